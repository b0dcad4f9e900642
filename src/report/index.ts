// Public API of report/ (filled in by its issue).
export {};
