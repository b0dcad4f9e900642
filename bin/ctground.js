#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so a fresh clone needs no build step.
import process from 'node:process';
import { register } from 'tsx/esm/api';
// ONNX Runtime's telemetry off (src/engine/ort-env.ts says why), set before anything can load it
process.env.ORT_DISABLE_TELEMETRY = '1';
register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2));
