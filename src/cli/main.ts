import { UserError } from '../common/index.ts';

/**
 * The `ctground` command. Each subcommand lives in its own module under commands/ and exports
 * `run(argv: string[]): Promise<number | void>` and a one-line `summary`; they are loaded lazily so
 * `ctground info` does not pay for ONNX Runtime start-up.
 */
const commands: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number | void> }> }> = {
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
  label: { summary: 'auto-label a whole archive of studies (resumable)', load: () => import('./commands/label.ts') },
  demo: { summary: 'ground the bundled example study end to end', load: () => import('./commands/demo.ts') },
  serve: { summary: 'the review viewer in the browser', load: () => import('./commands/serve.ts') },
  bench: { summary: 'benchmarks: ctground bench [NAME] [--json]', load: () => import('./commands/bench.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: ctground <command> [options]', '', ...Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) throw new UserError(`unknown command '${name}'\n${usage()}`);
  let mod;
  try {
    mod = await cmd.load();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`commands/${name}`)) {
      throw new UserError(`command '${name}' is not available in this build`);
    }
    throw e;
  }
  return (await mod.run(rest)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    if (e instanceof UserError) {
      process.stderr.write(`ctground: ${e.message}\n`);
      process.exitCode = e.exitCode;
    } else {
      process.stderr.write(`ctground: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
