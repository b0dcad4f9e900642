// Public API of web/: the review viewer's server (`ctground serve`).
export { startServer, imageKind, isLoopback, DEFAULT_MAX_UPLOAD, type ServeOptions, type RunningServer } from './server.ts';
export { DataFolder, OutsideError, type StudyRecord, type AnomalyRecord } from './store.ts';
export { tarArchive } from './tar.ts';
export { pageBundle } from './bundle.ts';
