import { existsSync, mkdirSync, readdirSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileError, type UserError } from './errors.ts';

/**
 * Writes a file so that a reader (or a killed process) never sees it half-written: the bytes go
 * to a temporary sibling that is renamed into place, which is atomic on one filesystem.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, data);
    killPoint();
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

let steps = 0;

/**
 * Fault injection for the restart test (test/hardening): with CTGROUND_TEST_KILL_AT=N the process
 * SIGKILLs itself at its N-th write step (before each rename of writeFileAtomic and
 * writeOutputsAtomic, and between the latter's renames), so a test can stop a real run at every
 * point that matters, including the windows no timing would hit. Unset, it costs one lookup.
 */
function killPoint(): void {
  const at = process.env.CTGROUND_TEST_KILL_AT;
  if (at && ++steps === Number(at)) process.kill(process.pid, 'SIGKILL');
}

/** Temporary folders of writeOutputsAtomic: `.NAME.partial-PID` (being filled) and `.NAME.old-PID` (being replaced). */
const PARTIAL_RE = /^\..+\.(partial|old)-\d+$/;

/** errno codes that mean "this output cannot be written here", whatever was being written. */
const WRITE_FAILURES: Record<string, string> = {
  ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system',
  EACCES: 'permission denied', EPERM: 'operation not permitted', ENOTDIR: 'a file is in the way of a folder',
  EISDIR: 'a folder is in the way of a file', EEXIST: 'something else is in the way', ENAMETOOLONG: 'name too long',
};

/**
 * The one-line error for a failed write (disk full, read-only, no permission, a file in the way),
 * naming `where`; null for an error that is not one.
 */
export function writeFailure(e: unknown, where: string, what = 'cannot write the outputs'): UserError | null {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (!code || !(code in WRITE_FAILURES)) return null;
  return fileError(where, `${what} (${code}: ${WRITE_FAILURES[code]})`);
}

/**
 * Writes a set of outputs so that neither a reader nor a run restarted after a kill ever sees
 * part of it: `fill` writes everything into a fresh temporary folder beside `dir`, which then
 * takes its place. On failure the temporary folder is removed and a write failure (ENOSPC,
 * EROFS, …) becomes one line naming `dir`.
 *
 * mode 'replace' (default): `dir` is wholly ours (one study of `label`): the old folder, if any,
 * is renamed aside, the new one renamed in, the old one removed. A kill between those two renames
 * leaves no `dir` (the study is redone); removePartialOutputs clears what is left.
 * mode 'merge': `dir` may hold the user's own files (`ground --out`): each entry the fill wrote
 * replaces the same name in `dir`, and the names in `stale` it did not write are removed, so an
 * earlier run's maps do not stay beside a findings.json that no longer lists them. `last` (the
 * file whose presence means "complete") is removed first and moved in last.
 */
export async function writeOutputsAtomic<T>(dir: string, fill: (tmp: string) => Promise<T> | T, opts: { mode?: 'replace' | 'merge'; stale?: string[]; last?: string } = {}): Promise<T> {
  const parent = dirname(dir), name = basename(dir);
  const tmp = join(parent, `.${name}.partial-${process.pid}`);
  let result: T;
  try {
    mkdirSync(parent, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    result = await fill(tmp);
    killPoint();
    if (opts.mode === 'merge') mergeInto(tmp, dir, opts.stale ?? [], opts.last);
    else if (existsSync(dir)) {
      const old = join(parent, `.${name}.old-${process.pid}`);
      rmSync(old, { recursive: true, force: true });
      renameSync(dir, old);
      killPoint();
      renameSync(tmp, dir);
      killPoint();
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dir);
    killPoint();
  } catch (e) {
    // the cleanup can fail the same way the write did (a file where the folder should be)
    try { rmSync(tmp, { recursive: true, force: true }); } catch { /* nothing was made there */ }
    throw writeFailure(e, dir) ?? e;
  }
  rmSync(tmp, { recursive: true, force: true });
  return result;
}

function mergeInto(tmp: string, dir: string, stale: string[], last: string | undefined): void {
  mkdirSync(dir, { recursive: true });
  const fresh = readdirSync(tmp);
  if (last) rmSync(join(dir, last), { recursive: true, force: true });
  for (const n of stale) if (!fresh.includes(n)) rmSync(join(dir, n), { recursive: true, force: true });
  for (const n of fresh.filter((x) => x !== last).concat(last && fresh.includes(last) ? [last] : [])) {
    rmSync(join(dir, n), { recursive: true, force: true });
    renameSync(join(tmp, n), join(dir, n));
    killPoint();
  }
}

/** Removes, in `dir` and below, the temporary folders a killed writeOutputsAtomic left. */
export function removePartialOutputs(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    if (PARTIAL_RE.test(e.name)) rmSync(join(dir, e.name), { recursive: true, force: true });
    else removePartialOutputs(join(dir, e.name));
  }
}
