import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForServer } from './server.ts';

/**
 * A real Redis for the queue's tests and bench: Debian's redis-server on 127.0.0.1 on a free port,
 * nothing saved to disk (--save '' --appendonly no, in a temporary folder), stopped after.
 */
export interface TestRedis { url: string; port: number; stop: () => Promise<void> }

export const haveRedis = (): boolean => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** Why the queue's tests skip, or undefined when they run. CI (CTGROUND_CI=1) never skips: no server there is a failure. */
export function redisSkipReason(): string | undefined {
  if (haveRedis() || process.env.CTGROUND_CI) return undefined;
  return 'redis-server not installed (apt-get install redis-server; CI installs it and requires it)';
}

/** Redis answers PING once it accepts connections. */
function ping(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.setTimeout(500, () => { s.destroy(); ok(false); });
    s.on('error', () => ok(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => { s.destroy(); ok(d.toString().startsWith('+PONG')); });
  });
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  if (!(await waitForServer(child, () => ping(port), 10_000, 50))) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start on port ${port}: ${stderr.trim().split('\n').pop() ?? ''}`);
  }
  return {
    url: `redis://127.0.0.1:${port}`, port,
    stop: async () => {
      if (child.exitCode === null) { child.kill('SIGTERM'); await exited; }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One Redis command through redis-cli (the tests' independent view of the server). */
export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
