import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

let cached: Promise<string> | undefined;

/**
 * The page script with niivue, bundled by esbuild when the server starts (about a second) and
 * kept in memory: nothing generated is committed or written, so a fresh clone serves the page
 * as is and the bundle can never be stale.
 */
export function pageBundle(): Promise<string> {
  cached ??= build({
    entryPoints: [here('./page/main.ts')],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, write: false, logLevel: 'silent',
  }).then((r) => r.outputFiles[0]!.text);
  return cached;
}

export function pageHtml(): string {
  return readFileSync(here('./page/index.html'), 'utf8');
}
