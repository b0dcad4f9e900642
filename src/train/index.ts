// Public API of train/ (filled in by its issue).
export {};
