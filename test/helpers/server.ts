import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (the OS's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
  });
}

/**
 * Waits for a test server the tests started to answer `up`, asking every `everyMs`. Gives up when
 * the process has exited or `limitMs` has passed: then it SIGKILLs the process and returns false, so
 * the caller removes its folder and says why in its own words.
 */
export async function waitForServer(child: ChildProcess, up: () => Promise<boolean>, limitMs: number, everyMs: number): Promise<boolean> {
  const t0 = Date.now();
  while (!(await up())) {
    if (child.exitCode !== null || Date.now() - t0 > limitMs) {
      child.kill('SIGKILL');
      return false;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}
