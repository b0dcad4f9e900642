// Public API of eval/ (filled in by its issue).
export {};
