import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForServer } from './server.ts';

/**
 * A real PACS for the DICOMweb tests: Debian's Orthanc with its DICOMweb plugin, a temporary
 * storage folder and a JSON config on a free HTTP port, stopped after. Orthanc 1.10 has no HTTP
 * bind-address setting, so RemoteAccessAllowed=false makes it answer 127.0.0.1 only; its DICOM
 * (DIMSE) server is off.
 */
export interface TestOrthanc { url: string; dicomweb: string; port: number; stop: () => Promise<void> }

const PLUGIN_DIRS = ['/usr/share/orthanc/plugins', '/usr/lib/orthanc'];

export function dicomwebPlugin(): string | undefined {
  const listed = spawnSync('dpkg', ['-L', 'orthanc-dicomweb'], { encoding: 'utf8' });
  const fromDpkg = listed.status === 0 ? listed.stdout.split('\n').find((l) => /libOrthancDicomWeb\.so/.test(l) && existsSync(l)) : undefined;
  return fromDpkg ?? PLUGIN_DIRS.map((d) => join(d, 'libOrthancDicomWeb.so')).find((p) => existsSync(p));
}

export const haveOrthanc = (): boolean => spawnSync('Orthanc', ['--version'], { stdio: 'ignore' }).status === 0 && dicomwebPlugin() !== undefined;

/** Why the PACS tests skip, or undefined when they run. CI (CTGROUND_CI=1) never skips. */
export function orthancSkipReason(): string | undefined {
  if (haveOrthanc() || process.env.CTGROUND_CI) return undefined;
  return 'Orthanc with its DICOMweb plugin not installed (apt-get install orthanc orthanc-dicomweb; CI installs them and requires them)';
}

/** Starts Orthanc; `lua` is an optional Lua script (a ReceivedInstanceFilter, say) it loads. */
export async function startOrthanc(opts: { lua?: string } = {}): Promise<TestOrthanc> {
  const plugin = dicomwebPlugin();
  if (!plugin) throw new Error('the Orthanc DICOMweb plugin (orthanc-dicomweb) is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'ctg-orthanc-'));
  const port = await freePort();
  const lua = opts.lua ? join(dir, 'filter.lua') : undefined;
  if (lua) writeFileSync(lua, opts.lua!);
  const config = {
    Name: 'ctground-test', StorageDirectory: join(dir, 'db'), IndexDirectory: join(dir, 'db'),
    HttpPort: port, HttpServerEnabled: true, RemoteAccessAllowed: false, AuthenticationEnabled: false,
    DicomServerEnabled: false, Plugins: [plugin], LuaScripts: lua ? [lua] : [],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false },
    StableAge: 1, HttpTimeout: 30, SaveJobs: false,
  };
  writeFileSync(join(dir, 'orthanc.json'), JSON.stringify(config, null, 2));
  const child: ChildProcess = spawn('Orthanc', [join(dir, 'orthanc.json')], { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr = (stderr + String(d)).slice(-4000); });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const url = `http://127.0.0.1:${port}`;
  const up = async (): Promise<boolean> => {
    try {
      return (await fetch(`${url}/system`, { signal: AbortSignal.timeout(1000) })).ok;
    } catch { /* not up yet */ return false; }
  };
  if (!(await waitForServer(child, up, 60_000, 200))) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Orthanc did not start on port ${port}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return {
    url, dicomweb: `${url}/dicom-web`, port,
    stop: async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Uploads Part 10 files through Orthanc's own REST API (not DICOMweb: the code under test). */
export async function uploadToOrthanc(o: TestOrthanc, files: Buffer[]): Promise<void> {
  for (const f of files) {
    const r = await fetch(`${o.url}/instances`, { method: 'POST', body: new Uint8Array(f), headers: { 'Content-Type': 'application/dicom' } });
    if (!r.ok) throw new Error(`Orthanc refused an upload: HTTP ${r.status} ${await r.text()}`);
  }
}
