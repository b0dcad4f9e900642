import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** An executable file at `p`, or nothing. */
function executable(p: string): string | undefined {
  try {
    if (!statSync(p).isFile()) return undefined;
    accessSync(p, constants.X_OK);
    return p;
  } catch {
    return undefined;
  }
}

/**
 * The Chromium the browser test drives: $CHROME_PATH when set (it must exist: a wrong path is a
 * mistake, not an absence), else `chromium` or `chromium-browser` on $PATH (Debian's and Ubuntu's names).
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): { path?: string; problem?: string } {
  if (env.CHROME_PATH) {
    const p = executable(env.CHROME_PATH);
    return p ? { path: p } : { problem: `CHROME_PATH=${env.CHROME_PATH} is not an executable file` };
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of ['chromium', 'chromium-browser']) {
      const p = executable(join(dir, name));
      if (p) return { path: p };
    }
  }
  return { problem: 'no Chromium found (looked for $CHROME_PATH, chromium and chromium-browser on PATH)' };
}

/**
 * `test()`'s skip option for a browser test: false (run it) where Chromium is found or CI requires
 * it (CTGROUND_CI=1: the test then fails on the missing browser instead of passing quietly), else the
 * one line that says how to run it.
 */
export function chromiumSkip(env: NodeJS.ProcessEnv = process.env): false | string {
  const c = findChromium(env);
  if (c.path || env.CTGROUND_CI === '1') return false;
  return `${c.problem}; to run it: apt-get install chromium (Debian) or set CHROME_PATH`;
}

