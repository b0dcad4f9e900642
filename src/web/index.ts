// Public API of web/ (filled in by its issue).
export {};
