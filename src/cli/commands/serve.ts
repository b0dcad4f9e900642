import { cpSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { projectRoot, UserError } from '../../common/index.ts';
import { parseFlags, intFlag, numFlag } from '../args.ts';
import { loadGrounderWithFallback } from '../../pipeline/index.ts';
import { startServer, isLoopback, DEFAULT_MAX_UPLOAD } from '../../web/index.ts';

export const summary = 'the review viewer in the browser';

export const USAGE = `usage: ctground serve [--data DIR] [--port 8080] [--host 127.0.0.1 [--allow-remote]] [--model DIR|oracle:NAME] [--max-upload-mb N]
  --data   dataset folder (manifest.jsonl) to review; the server reads and writes nothing outside it.
           Default: a working copy of the bundled example in out/viewer/
  --host   interface to listen on (default 127.0.0.1: this machine only)
  --allow-remote  needed for a --host other than loopback: whoever reaches that address can read
           and change the studies (the viewer has no accounts); a warning says so at start`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    data: { type: 'string' }, port: { type: 'string' }, host: { type: 'string' }, model: { type: 'string' },
    'max-upload-mb': { type: 'string' }, 'allow-remote': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, false);
  if (values.help) { console.log(USAGE); return 0; }
  const port = intFlag(values.port, 'port', 8080);
  if (port < 0 || port > 65535) throw new UserError(`--port must be 0..65535, got ${port}`);
  const maxMb = numFlag(values['max-upload-mb'], 'max-upload-mb', DEFAULT_MAX_UPLOAD / 2 ** 20);
  const host = values.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    if (!values['allow-remote']) throw new UserError(`--host ${host}: listens beyond this machine; anyone who reaches it can read and change the studies (add --allow-remote to mean it)`);
    console.error(`warning: --host ${host} --allow-remote: the viewer has no accounts; anyone who can reach this address can read and change the studies`);
  }
  let dataDir: string;
  if (values.data) {
    dataDir = resolve(values.data);
    if (!existsSync(dataDir)) throw new UserError(`${values.data}: data folder not found`);
  } else {
    // the example stays pristine in the repository; reviews go into a copy
    dataDir = join(projectRoot, 'out', 'viewer');
    if (!existsSync(join(dataDir, 'manifest.jsonl'))) cpSync(join(projectRoot, 'examples', 'demo'), dataDir, { recursive: true });
  }
  const srv = await startServer({
    dataDir, port, host, allowRemote: values['allow-remote'] === true, maxUploadBytes: Math.round(maxMb * 2 ** 20),
    grounder: async () => {
      const { grounder, note } = await loadGrounderWithFallback(values.model);
      if (note) console.error(note);
      return grounder;
    },
  });
  console.log(`ctground viewer on ${srv.url}  (data: ${dataDir}; Ctrl-C to stop)`);
  await new Promise<void>((ok) => {
    const stop = (): void => { void srv.close().then(ok); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
