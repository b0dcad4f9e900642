// `npm run bench`: every benchmark, human-readable.
import { run } from '../src/cli/commands/bench.ts';
process.exitCode = await run(process.argv.slice(2));
