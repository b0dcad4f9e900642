import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quiet } from '../src/anatomy/estimate.ts';

// Two registrations of one process overlap (label's studies, eval's sets): each silences the
// console while itk-wasm runs, and the console must come back whole when both are done, whichever
// ends first.
test('quiet: overlapping calls give the console back when the last one ends', async () => {
  const original = console.log;
  let releaseA!: () => void;
  let releaseB!: () => void;
  const a = quiet(() => new Promise<void>((r) => { releaseA = r; }));
  const b = quiet(() => new Promise<void>((r) => { releaseB = r; }));
  assert.notEqual(console.log, original, 'silenced while they run');
  releaseA();
  await a;
  assert.notEqual(console.log, original, 'still silenced while the second runs');
  releaseB();
  await b;
  assert.equal(console.log, original, 'the console is given back');
});

test('quiet: a failing call gives the console and the exit code back', async () => {
  const original = console.error;
  const exit = process.exitCode;
  await assert.rejects(quiet(async () => { process.exitCode = 7; throw new Error('pipeline failed'); }), /pipeline failed/);
  assert.equal(console.error, original);
  assert.equal(process.exitCode, exit);
});
