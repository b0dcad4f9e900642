import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectRoot, UserError } from '../../common/index.ts';

export const USAGE = `usage: ctground bench [NAME …] [--json] [options of the benchmark]
  NAME    one of the benchmarks in bench/ (NAME.bench.ts: engine, eval, grounding, label, report, synth, text, volume); default all
  --json  results as JSON
  label --real   the label pipeline on a real-size CT (see docs/performance.md)`;

/**
 * Benchmarks live in bench/NAME.bench.ts and export `run({ json }): Promise<Record<string, unknown>>`.
 * Each measures ours against an alternative in the same run and reports ratios, since these
 * machines are too noisy for absolute thresholds.
 */
export async function run(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const names = argv.filter((a) => !a.startsWith('--'));
  const dir = join(projectRoot, 'bench');
  const all = readdirSync(dir).filter((f) => f.endsWith('.bench.ts')).map((f) => f.replace(/\.bench\.ts$/, '')).sort();
  const chosen = names.length ? names : all;
  for (const n of chosen) if (!all.includes(n)) throw new UserError(`unknown benchmark '${n}' (have: ${all.join(', ')})`);
  const results: Record<string, unknown> = {};
  for (const n of chosen) {
    if (!json) console.log(`== bench ${n}`);
    const mod = (await import(pathToFileURL(join(dir, `${n}.bench.ts`)).href)) as { run(o: { json: boolean; args: string[] }): Promise<Record<string, unknown>> };
    // the options besides --json go to the benchmark (label --real)
    results[n] = await mod.run({ json, args: argv.filter((a) => a.startsWith('--') && a !== '--json') });
  }
  if (json) console.log(JSON.stringify(chosen.length === 1 ? results[chosen[0]!] : results));
  return 0;
}
