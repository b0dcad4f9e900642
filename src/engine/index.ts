// Public API of engine/ (filled in by its issue).
export {};
