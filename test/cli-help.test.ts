import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../src/common/index.ts';

const run = promisify(execFile);
const BIN = join(projectRoot, 'bin', 'ctground.js');

interface Out { code: number; stdout: string; stderr: string; ms: number }

/** The CLI as a user runs it, in an empty folder, so anything a command wrote would show there. */
async function ctground(args: string[], cwd: string): Promise<Out> {
  const t0 = performance.now();
  try {
    const r = await run(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '', ms: performance.now() - t0 };
  }
}

/** The commands as the CLI's own table lists them (its top-level usage), so commands added later are walked too. */
async function commandNames(cwd: string): Promise<string[]> {
  const r = await ctground(['--help'], cwd);
  assert.equal(r.code, 0, r.stderr);
  const names = r.stdout.split('\n').map((l) => /^ {2}([a-z][a-z0-9-]*) {2,}\S/.exec(l)?.[1]).filter((n): n is string => Boolean(n));
  assert.ok(names.length >= 10, `the top-level usage lists the commands:\n${r.stdout}`);
  return names;
}

/** The long options a command's source declares to parseArgs (`name: { type: 'string' | 'boolean' … }`), help aside. */
function declaredOptions(name: string): string[] {
  const file = join(projectRoot, 'src', 'cli', 'commands', `${name}.ts`);
  if (!existsSync(file)) return [];
  const src = readFileSync(file, 'utf8');
  const opts = [...src.matchAll(/['"]?([a-z][a-z0-9-]*)['"]?\s*:\s*\{\s*type:\s*'(?:string|boolean)'/g)].map((m) => m[1]!);
  return [...new Set(opts)].filter((o) => o !== 'help');
}

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => { for (let x = queue.shift(); x !== undefined; x = queue.shift()) await f(x); }));
}

test('every command answers --help and -h with its usage, exit 0, nothing run or written; its usage names every option it takes', { timeout: 300_000 }, async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'ctg-help-'));
  try {
    const names = await commandNames(cwd);
    for (const must of ['info', 'train', 'eval', 'calibrate', 'ablation', 'bench', 'label', 'ground', 'demo']) assert.ok(names.includes(must), `${must} in the command table`);
    const outBefore = existsSync(join(projectRoot, 'out')) ? readdirSync(join(projectRoot, 'out')).sort() : [];
    const problems: string[] = [];
    await pool(names.flatMap((n) => [[n, '--help'], [n, '-h']]), 3, async ([name, flag]) => {
      // a required option missing and a bogus one beside it: help wins, the command never parses them
      const r = await ctground([name!, flag!, '--out', 'x'], cwd);
      const where = `ctground ${name} ${flag}`;
      if (r.code !== 0) problems.push(`${where}: exit ${r.code}: ${r.stderr.split('\n')[0]}`);
      if (r.stderr !== '') problems.push(`${where}: wrote to stderr: ${r.stderr.split('\n')[0]}`);
      if (!r.stdout.startsWith(`usage: ctground ${name}`)) problems.push(`${where}: stdout does not start with its usage: ${r.stdout.split('\n')[0]}`);
      if (/^== bench/m.test(r.stdout)) problems.push(`${where}: ran a benchmark`);
      if (flag === '--help') {
        const missing = declaredOptions(name!).filter((o) => !new RegExp(`--${o}(?![a-z-])`).test(r.stdout));
        if (missing.length) problems.push(`${where}: usage does not mention ${missing.map((o) => `--${o}`).join(', ')}`);
      }
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(readdirSync(cwd), [], 'nothing written in the working folder');
    const outAfter = existsSync(join(projectRoot, 'out')) ? readdirSync(join(projectRoot, 'out')).sort() : [];
    assert.deepEqual(outAfter, outBefore, 'nothing new under out/ (demo, serve)');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('ctground --version prints the package version; an unknown command is one line and exit 2', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'ctg-help-'));
  try {
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string };
    const v = await ctground(['--version'], cwd);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, `ctground ${pkg.version}\n`);
    const u = await ctground(['no-such-command'], cwd);
    assert.equal(u.code, 2);
    assert.match(u.stderr.split('\n')[0]!, /^ctground: unknown command 'no-such-command'$/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
