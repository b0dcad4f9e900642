// Public API of anatomy/ (filled in by its issue).
export {};
