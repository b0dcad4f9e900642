import { existsSync, mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { UserError, writeFileAtomic } from '../common/index.ts';

/** A served dataset folder: manifest.jsonl and the files it names, all inside `root`. */
export interface StudyRecord {
  id: string;
  ct: string;
  report: string;
  labels?: string;
  split?: string;
  grounding?: string;
  anomalies?: AnomalyRecord[];
  [k: string]: unknown;
}

export interface AnomalyRecord {
  id: string;
  organ?: string;
  type?: string;
  certainty?: string;
  spans?: unknown[];
  mask?: string | null;
  box?: unknown;
  review?: { decision: 'accepted' | 'rejected' | 'redrawn'; threshold?: number; voxelBox?: { min: number[]; max: number[] } };
  [k: string]: unknown;
}

/** Thrown for requests outside the folder; the server answers 403 with its message. */
export class OutsideError extends Error {}

/**
 * The data folder the viewer may touch. Every path a request names goes through `inside`, which
 * rejects absolute paths, `..` segments and symlinks that lead out (checked on the real path), so
 * the server reads and writes nothing else.
 */
export class DataFolder {
  readonly root: string;
  private readonly realRoot: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.root = resolve(dir);
    mkdirSync(this.root, { recursive: true });
    this.realRoot = realpathSync(this.root);
    if (!existsSync(this.manifestPath)) writeFileAtomic(this.manifestPath, '');
  }

  get manifestPath(): string { return join(this.root, 'manifest.jsonl'); }

  /** Absolute path of `rel` (a path relative to the folder), or OutsideError. */
  inside(rel: string): string {
    if (typeof rel !== 'string' || rel.length === 0 || rel.includes('\0')) throw new OutsideError('path: empty or invalid');
    if (isAbsolute(rel) || /^[a-zA-Z]:/.test(rel)) throw new OutsideError('path: absolute paths are not served');
    const parts = rel.split(/[\\/]+/);
    if (parts.some((p) => p === '..')) throw new OutsideError('path: ".." is not allowed');
    const abs = resolve(this.root, rel);
    if (abs !== this.root && !abs.startsWith(this.root + sep)) throw new OutsideError('path: outside the data folder');
    if (existsSync(abs)) {
      const real = realpathSync(abs);
      if (real !== this.realRoot && !real.startsWith(this.realRoot + sep)) throw new OutsideError('path: leads outside the data folder');
    }
    return abs;
  }

  /** Relative form of an absolute path inside the folder (forward slashes). */
  rel(abs: string): string {
    return relative(this.root, abs).split(sep).join('/');
  }

  records(): StudyRecord[] {
    const text = readFileSync(this.manifestPath, 'utf8');
    const out: StudyRecord[] = [];
    text.split('\n').forEach((line, n) => {
      if (!line.trim()) return;
      try {
        const r = JSON.parse(line) as StudyRecord;
        if (typeof r.id === 'string') out.push(r);
      } catch {
        throw new UserError(`${this.manifestPath}:${n + 1}: not valid JSON`);
      }
    });
    return out;
  }

  record(id: string): StudyRecord | undefined {
    return this.records().find((r) => r.id === id);
  }

  /**
   * Read-modify-write of the manifest, one at a time within this server, and atomic on disk: a
   * reader (or a crash) sees the old or the new manifest, never a mix.
   */
  update<T>(fn: (records: StudyRecord[]) => T): Promise<T> {
    const run = this.chain.then(() => {
      const records = this.records();
      const result = fn(records);
      writeFileAtomic(this.manifestPath, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
      return result;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
