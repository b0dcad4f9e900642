import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRng } from '../src/common/index.ts';
import { writeNifti, type Volume } from '../src/volume/index.ts';
import { organValue } from '../src/anatomy/index.ts';

/**
 * A toy dataset in the manifest format, made here so model/train/eval tests need neither the data
 * engine nor big files: 32³ voxels at 4 mm, two kidneys and a liver, one or two ball lesions
 * (bright "mass" or dark "cyst") in named organs, and a two-sentence report whose spans point at
 * them. Returns the folder. `places`: a liver finding names its lobe ("the right lobe of the liver"),
 * as places.json draws it, and no size.
 */
export async function makeToyDataset(dir: string, opts: { studies: number; seed: number; split?: (i: number) => string; places?: boolean }): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const N = 32, sp = 4;
  const geom = { size: [N, N, N] as [number, number, number], spacing: [sp, sp, sp] as [number, number, number], origin: [0, 0, 0] as [number, number, number], direction: [1, 0, 0, 0, 1, 0, 0, 0, 1] };
  const rng = createRng(opts.seed);
  const organs = [
    { name: 'kidney_right', cls: 'kidney', phrase: 'right kidney', c: [92, 52, 40], r: [14, 18, 24] },
    { name: 'kidney_left', cls: 'kidney', phrase: 'left kidney', c: [36, 52, 40], r: [14, 18, 24] },
    { name: 'liver', cls: 'liver', phrase: 'liver', c: [64, 76, 96], r: [40, 22, 20] },
  ];
  const lines: string[] = [];
  for (let s = 0; s < opts.studies; s++) {
    const ct = new Float32Array(N ** 3).fill(40), labels = new Uint8Array(N ** 3);
    const at = (i: number, j: number, k: number) => [i * sp, j * sp, k * sp];
    const inside = (p: number[], c: number[], r: number[]) => p.reduce((a, v, d) => a + ((v - c[d]!) / r[d]!) ** 2, 0) <= 1;
    for (let k = 0, o = 0; k < N; k++) for (let j = 0; j < N; j++) for (let i = 0; i < N; i++, o++) {
      const p = at(i, j, k);
      for (const org of organs) if (inside(p, org.c, org.r)) { labels[o] = organValue(org.name); ct[o] = org.name === 'liver' ? 60 : 30; }
    }
    const picks = rng.shuffle([0, 1, 2]).slice(0, rng.int(1, 2));
    const sentences: string[] = [];
    const anomalies: unknown[] = [];
    let text = '';
    for (const [n, oi] of picks.entries()) {
      const org = organs[oi]!;
      const kind = rng.pick(['mass', 'cyst'] as const);
      const radius = rng.uniform(6, 9);
      const c = org.c.map((v, d) => v + rng.uniform(-0.4, 0.4) * org.r[d]!);
      const mask = new Uint8Array(N ** 3);
      for (let k = 0, o = 0; k < N; k++) for (let j = 0; j < N; j++) for (let i = 0; i < N; i++, o++) {
        if (labels[o] && inside(at(i, j, k), c, [radius, radius, radius])) { mask[o] = 1; ct[o] = kind === 'mass' ? 130 : -20; }
      }
      // the liver box's x fraction: 1 = patient right (+x here)
      const lobe = opts.places && org.name === 'liver' ? ((c[0]! - org.c[0]! + org.r[0]!) / (2 * org.r[0]!) > 0.45 ? 'right lobe' : 'left lobe') : null;
      // and states no size: the typical-size cap's case
      const size = lobe ? '' : `${Math.round(2 * radius)} mm `;
      const sentence = `There is a ${size}${kind} in the ${lobe ? `${lobe} of the ` : ''}${org.phrase}.`;
      const start = text.length + (text ? 1 : 0);
      text += (text ? ' ' : '') + sentence;
      const span = (t: string, cls: string) => { const b = text.indexOf(t, start); return { start: b, end: b + t.length, text: t, class: cls }; };
      const id = `a${n}`;
      const maskPath = `masks/s${s}_${id}.nii.gz`;
      mkdirSync(join(dir, 'masks'), { recursive: true });
      await writeNifti(join(dir, maskPath), { ...geom, data: mask } as Volume);
      anomalies.push({ id, organ: org.cls, type: kind, certainty: 'present', spans: [span(kind, 'anomaly'), span(org.phrase, 'anatomy'), ...(size ? [span(size.trim(), 'size')] : []), ...(lobe ? [span(lobe, 'location')] : [])], mask: maskPath });
      sentences.push(sentence);
    }
    mkdirSync(join(dir, 'ct'), { recursive: true });
    await writeNifti(join(dir, `ct/s${s}.nii.gz`), { ...geom, data: ct } as Volume);
    await writeNifti(join(dir, `ct/s${s}_labels.nii.gz`), { ...geom, data: labels } as Volume);
    writeFileSync(join(dir, `ct/s${s}.txt`), text);
    lines.push(JSON.stringify({ id: `s${s}`, ct: `ct/s${s}.nii.gz`, labels: `ct/s${s}_labels.nii.gz`, report: `ct/s${s}.txt`, split: opts.split ? opts.split(s) : 'train', anomalies }));
  }
  writeFileSync(join(dir, 'manifest.jsonl'), lines.join('\n') + '\n');
  return dir;
}
