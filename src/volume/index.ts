// Public API of volume/ (filled in by its issue).
export {};
