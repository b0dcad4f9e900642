import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../../src/common/index.ts';
import { runCli } from '../../src/cli/main.ts';

export interface CliResult { code: number | null; stdout: string; stderr: string; maxRssMb?: number }

/** The CLI as a user runs it: a new process through bin/ctground.js. */
export function cliProcess(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [join(projectRoot, 'bin', 'ctground.js'), ...args], {
    encoding: 'utf8', cwd: opts.cwd ?? projectRoot, timeout: opts.timeout ?? 120_000, env: opts.env ?? process.env, input: opts.input, maxBuffer: 1 << 28,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The CLI run by a child process that reports its own peak resident memory
 * (process.resourceUsage().maxRSS, the kernel's high-water mark for the whole process).
 */
export function cliPeakRss(args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(projectRoot, 'test', 'helpers', 'rss-child.ts'), ...args], {
    encoding: 'utf8', cwd: projectRoot, timeout: opts.timeout ?? 180_000, env: opts.env ?? process.env, maxBuffer: 1 << 28,
  });
  const m = /\nPEAK_RSS_KB (\d+)\n$/.exec(r.stderr);
  return { code: r.status, stdout: r.stdout, stderr: m ? r.stderr.slice(0, m.index) : r.stderr, maxRssMb: m ? Number(m[1]) / 1024 : undefined };
}

/**
 * The CLI inside this process (runCli, as bin/ctground.js calls it): ten times cheaper than a new
 * process, which is what lets the fuzz test run hundreds of cases. What commands print with console.log is captured as stdout.
 */
export async function cliInProcess(args: string[]): Promise<CliResult> {
  let stderr = '', stdout = '';
  // commands print through console.log or process.stdout.write with strings; the test runner
  // reports through process.stdout too, in Buffers, which pass through untouched
  const log = console.log, write = process.stdout.write;
  console.log = (...a: unknown[]) => { stdout += a.map(String).join(' ') + '\n'; };
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') { stdout += chunk; return true; }
    return (write as (...x: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  // a command may add a listener to stdout for its one run (structure's EPIPE handler): removed after each
  const listeners = new Set(process.stdout.listeners('error'));
  try {
    const code = await runCli(args, (s) => { stderr += s; });
    return { code, stdout, stderr };
  } finally {
    console.log = log;
    process.stdout.write = write;
    for (const l of process.stdout.listeners('error')) if (!listeners.has(l)) process.stdout.off('error', l as (...a: unknown[]) => void);
  }
}

/** The contract for bad input: exit 2, one stderr line `ctground: <name>: <problem>`, no stack trace. */
export function assertOneLineError(r: CliResult, name: string | null, problem?: RegExp): void {
  assert.equal(r.code, 2, `exit code ${r.code} (stderr: ${r.stderr})`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got: ${r.stderr}`);
  if (name !== null) assert.ok(lines[0]!.startsWith(`ctground: ${name}: `), lines[0]);
  else assert.ok(lines[0]!.startsWith('ctground: '), lines[0]);
  if (problem) assert.match(lines[0]!, problem);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
}
