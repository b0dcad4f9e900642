import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isThreshold, THRESHOLD_RULE, UserError } from '../common/index.ts';

/** node:util parseArgs, with unknown flags and missing values turned into one-line user errors. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UserError((e as Error).message.split('\n')[0]!);
  }
}

export function requireFlag<T>(value: T | undefined, flag: string): T {
  if (value === undefined || value === '') throw new UserError(`missing required option --${flag}`);
  return value;
}

export function intFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || !Number.isInteger(n)) throw new UserError(`--${flag} must be an integer, got '${value}'`);
  return n;
}

export function numFlag(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UserError(`--${flag} must be a number, got '${value}'`);
  return n;
}

/** A comma-separated list of numbers, each passing `ok` (its `rule` in the error); absent: `fallback`. */
export function numListFlag(value: string | undefined, flag: string, fallback: number[], ok: (v: number) => boolean, rule: string): number[] {
  if (value === undefined) return fallback;
  const xs = value.split(',').map((x) => (x.trim() === '' ? NaN : Number(x)));
  if (!xs.every((x) => Number.isFinite(x) && ok(x))) throw new UserError(`--${flag} must be a comma-separated list of numbers ${rule}, got '${value}'`);
  return xs;
}

/** --threshold in (0, 1]; absent: undefined, so the model's own region threshold applies. */
export function thresholdFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = numFlag(value, 'threshold', NaN);
  if (!isThreshold(t)) throw new UserError(`--threshold ${THRESHOLD_RULE}, got ${t}`);
  return t;
}

/** `label --queue`'s --attempts (tries per study, default 3), checked with the flags that go with it, for the folder and the PACS source alike. */
export function queueAttempts(v: { queue?: string; jobs?: string; model?: string; attempts?: string }): number {
  if (v.queue && (v.jobs || v.model)) throw new UserError('with --queue, --jobs and --model belong to each `ctground worker`');
  if (v.attempts && !v.queue) throw new UserError('--attempts needs --queue');
  const attempts = intFlag(v.attempts, 'attempts', 3);
  if (attempts < 1) throw new UserError(`--attempts must be at least 1, got ${attempts}`);
  return attempts;
}
