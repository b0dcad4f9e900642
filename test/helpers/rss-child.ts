// Runs one CLI command, then reports the process's peak resident memory on stderr's last line
// (process.resourceUsage().maxRSS: the kernel's high-water mark). See cliPeakRss in cli.ts.
import { runCli } from '../../src/cli/main.ts';

const code = await runCli(process.argv.slice(2));
// stdout is a pipe: what the command wrote must be flushed before exit
await new Promise<void>((ok) => process.stdout.write('', () => ok()));
process.stderr.write(`\nPEAK_RSS_KB ${process.resourceUsage().maxRSS}\n`, () => process.exit(code));
