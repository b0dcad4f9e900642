import { quoteName, UserError, writeFailure } from '../common/index.ts';
import { readFileSync } from 'node:fs';

/**
 * The `ctground` command. Each subcommand lives in its own module under commands/ and exports
 * `run(argv: string[]): Promise<number | void>`, a one-line `summary` and its `USAGE` (printed for
 * --help / -h, which main answers before the command runs); they are loaded lazily so
 * `ctground info` does not pay for ONNX Runtime start-up.
 */
const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number | void>; USAGE?: string }> }> = {
  info: { summary: 'size, spacing, orientation and world bounds of a CT or label image', load: () => import('./commands/info.ts') },
  structure: { summary: 'structure a report into anomalies (or --eval FIXTURES)', load: () => import('./commands/structure.ts') },
  synth: { summary: 'generate a synthetic dataset with exact ground truth', load: () => import('./commands/synth.ts') },
  dataset: { summary: 'dataset tools: check DIR, import …', load: () => import('./commands/dataset.ts') },
  'pretrain-text': { summary: 'masked-LM pretraining of the report text encoder', load: () => import('./commands/pretrain-text.ts') },
  train: { summary: 'train a grounding model', load: () => import('./commands/train.ts') },
  eval: { summary: 'evaluate a model or an oracle on a dataset', load: () => import('./commands/eval.ts') },
  calibrate: { summary: "choose a model's map calibration on validation data", load: () => import('./commands/calibrate.ts') },
  ablation: { summary: 'train and evaluate every variant beside the oracles (Table 1)', load: () => import('./commands/ablation.ts') },
  ground: { summary: 'ground every finding of a report in its CT', load: () => import('./commands/ground.ts') },
  anatomy: { summary: "the organ map ground and label use for a CT (TotalSegmentator's or estimated)", load: () => import('./commands/anatomy.ts') },
  label: { summary: 'auto-label a whole archive of studies (resumable)', load: () => import('./commands/label.ts') },
  worker: { summary: 'take `label --queue` studies from Redis until stopped (one per machine)', load: () => import('./commands/worker.ts') },
  queue: { summary: "the label queue's state: status, retry-failed, drain", load: () => import('./commands/queue.ts') },
  demo: { summary: 'ground the bundled example study end to end', load: () => import('./commands/demo.ts') },
  serve: { summary: 'the review viewer in the browser', load: () => import('./commands/serve.ts') },
  bench: { summary: 'benchmarks: ctground bench [NAME] [--json]', load: () => import('./commands/bench.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: ctground <command> [options] [--max-voxels N]', '', ...Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`)].join('\n');
}

/**
 * Options every command takes, wherever they stand on the line: --max-voxels N (the largest image
 * any reader accepts; its header is checked before the voxels are read). Returns the rest.
 */
async function globalFlags(argv: string[]): Promise<string[]> {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a !== '--max-voxels' && !a.startsWith('--max-voxels=')) { rest.push(a); continue; }
    const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n) || n < 1) throw new UserError(`--max-voxels must be a positive whole number, got '${v ?? ''}'`);
    const { setMaxVoxels } = await import('../volume/index.ts');
    setMaxVoxels(n);
  }
  return rest;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = await globalFlags(argv);
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`ctground ${(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version}`);
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) throw new UserError(`unknown command '${name}'`, 2, usage());
  let mod;
  try {
    mod = await cmd.load();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`commands/${name}`)) {
      throw new UserError(`command '${name}' is not available in this build`);
    }
    throw e;
  }
  // --help / -h anywhere before `--`, on every command: its usage, exit 0, and nothing run
  const own = rest.indexOf('--');
  if ((own < 0 ? rest : rest.slice(0, own)).some((a) => a === '--help' || a === '-h')) {
    console.log(mod.USAGE ?? `usage: ctground ${name} [options]\n  ${cmd.summary}`);
    return 0;
  }
  return (await mod.run(rest)) ?? 0;
}

/**
 * Runs one command and turns its outcome into an exit code: a UserError is one escaped line on
 * stderr and its code (2); anything else is a bug, printed with its stack, code 1. Exported so tests
 * (the fuzz test) can run hundreds of commands in one process.
 */
export async function runCli(argv: string[], stderr: (s: string) => void = (s) => { process.stderr.write(s); }): Promise<number> {
  // --max-voxels holds for this command only (a test runs many in one process)
  const savedLimit = process.env.CTGROUND_MAX_VOXELS;
  try {
    return await main(argv);
  } catch (e) {
    if (e instanceof UserError) {
      // the whole message escaped: a name that reached it through a template, not fileError, still cannot split it
      stderr(`ctground: ${quoteName(e.message)}\n${e.usage ? `${e.usage}\n` : ''}`);
      return e.exitCode;
    }
    // a disk that is full or read-only is the user's to fix, wherever the write was: one line, exit 2
    const path = (e as NodeJS.ErrnoException)?.path;
    const failure = typeof path === 'string' ? writeFailure(e, path, `${(e as NodeJS.ErrnoException).syscall ?? 'file operation'} failed`) : null;
    if (failure) { stderr(`ctground: ${quoteName(failure.message)}\n`); return 2; }
    stderr(`ctground: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  } finally {
    if (savedLimit === undefined) delete process.env.CTGROUND_MAX_VOXELS; else process.env.CTGROUND_MAX_VOXELS = savedLimit;
  }
}
