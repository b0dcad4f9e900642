// Public API of model/ (filled in by its issue).
export {};
