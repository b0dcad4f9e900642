// Public API of data/ (filled in by its issue).
export {};
