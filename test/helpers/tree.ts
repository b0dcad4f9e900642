import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Every file under `dir` by its path relative to `dir`, with its bytes. */
export function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p); else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/**
 * `out` holds the same files as `ref`, byte for byte. `ref` is the expected side (an uninterrupted
 * run), so a diff of the file lists reads as what `out` has more or lacks.
 */
export function assertSameTree(ref: string, out: string): void {
  const a = tree(ref), b = tree(out);
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  for (const [k, v] of a) assert.ok(v.equals(b.get(k)!), `${k} differs`);
}
