import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRng, fileError, median, writeFileAtomic, type Rng } from '../common/index.ts';
import { fromTotalSegmentator, insideDistance, loadOrganScheme, organEntriesForReportClass } from '../anatomy/index.ts';
import { indexToWorld, maskWorldBox, readVolume, resample, resampleToGrid, voxelBoxToWorld, type Geometry, type Vec3, type Volume } from '../volume/index.ts';
import { absentCandidates, loadPhrasing, writeReport, type Span } from './report.ts';
import { diameterText, lidcSplitOf, loadLidcConfig, noduleDescriptor, readLidcCatalog, renderNoduleSentence, type LidcNodule, type LidcSplit, type NoduleWords, type Piece } from './lidc.ts';
import { checkOrWriteOptions, readRecord, writeManifest, writeStudy, type ManifestStudy } from './dataset.ts';
import { sectionOf, type SynthAnomaly, type SynthStudy } from './synth.ts';

/**
 * The transplant engine: a real LIDC-IDRI nodule and the lung around it, taken from its own scan
 * and put into the lungs of a real CT (TotalSegmentator's example), at the background's sampling,
 * its parenchyma matched in HU to the background's and blended into it at the rim. The report is
 * written from the nodule's ratings and the lobe it landed in (read from the label map).
 */

export interface LungBackground {
  name: string;
  ct: Volume<Float32Array>;
  /** our organ scheme, TotalSegmentator's organs and the HU fallback elsewhere */
  labels: Volume<Uint8Array>;
  /** lobe value (our scheme) where TotalSegmentator segmented a lobe, else 0 */
  lung: Uint8Array;
  /** per lobe that has room for a nodule: its inside distance (mm) and voxel count */
  lobes: Map<string, { value: number; depth: Float32Array; voxels: number }>;
  sections: string[];
}

const bgCache = new Map<string, Promise<LungBackground>>();

/**
 * The lung background: TotalSegmentator's example_ct_sm (the 30-slice lung-base slab of
 * example_ct, 3 mm) with its own label map example_seg on the same grid, resampled to `spacing`
 * (CT linear, labels nearest). The slab's header origin is the uncropped scan's, but CT and labels
 * share it, so they agree with each other; only within-scan positions matter here.
 */
export function loadLungBackground(tsDir: string, spacing: number): Promise<LungBackground> {
  const key = `${tsDir}|${spacing}`;
  let p = bgCache.get(key);
  if (!p) {
    p = (async () => {
      const ctFile = join(tsDir, 'example_ct_sm.nii.gz'), segFile = join(tsDir, 'example_seg.nii.gz');
      let ct: Volume = await readVolume(ctFile);
      let seg: Volume = await readVolume(segFile);
      if (ct.data.length !== seg.data.length) throw fileError(segFile, `not on the grid of ${ctFile}`);
      if (spacing > 0) { ct = resample(ct, spacing, 'linear'); seg = resampleToGrid(seg, ct, 'nearest', { fill: 0 }); }
      const hu = Float32Array.from(ct.data);
      const huVol: Volume<Float32Array> = { ...ct, data: hu };
      const labels = fromTotalSegmentator(seg, huVol);
      const lung = new Uint8Array(hu.length);
      const lobeOrgans = organEntriesForReportClass('lung', { primary: true });
      const lobeValues = new Set(lobeOrgans.map((o) => o.value));
      const has = new Set<number>();
      for (let i = 0; i < hu.length; i++) {
        if (!seg.data[i]) continue;
        const v = labels.data[i]!;
        has.add(v);
        if (lobeValues.has(v)) lung[i] = v;
      }
      const lobes = new Map<string, { value: number; depth: Float32Array; voxels: number }>();
      for (const { name, value } of lobeOrgans) {
        const m = new Uint8Array(hu.length);
        let voxels = 0;
        for (let i = 0; i < m.length; i++) if (lung[i] === value) { m[i] = 1; voxels++; }
        if (!voxels) continue;
        const depth = insideDistance(m, ct.size, ct.spacing);
        // a lobe where not even a 3 mm ball fits takes no nodule (example_seg's right middle lobe is one voxel)
        let room = 0;
        for (const d of depth) if (d >= 1.5) room++;
        if (room >= 20) lobes.set(name, { value, depth, voxels });
      }
      const names = [...has].map((v) => loadOrganScheme().byValue.get(v)?.name ?? '');
      const sections = [...new Set([...names.map(sectionOf), 'bone'])];
      return { name: 'totalsegmentator-example-slab', ct: huVol, labels, lung, lobes, sections };
    })();
    bgCache.set(key, p);
  }
  return p;
}

/** A nodule crop brought onto the background's axes and spacing, ready to be placed by an integer shift. */
export interface PreparedNodule {
  nodule: LidcNodule;
  size: Vec3;
  hu: Float32Array;
  mask: Uint8Array;
  /** mm from the nearest mask voxel (0 inside) */
  dist: Float32Array;
  /** the mask's centroid voxel in this local grid */
  centre: Vec3;
  /** median HU of the crop's own lung (outside the mask, below parenchymaBelowHu) */
  parenchymaHu: number;
  voxels: number;
  /** whether the crop was mirrored left-right to match the lung side it goes to */
  mirrored: boolean;
}

/** The index axis of `g` that runs closest to world x (left-right). */
function xAxisOf(g: Geometry): number {
  const d = g.direction;
  const c = [0, 1, 2].map((a) => Math.abs(d[a]!));
  return c.indexOf(Math.max(...c));
}

/**
 * Reads a nodule crop and resamples it (HU linear, mask linear ≥ 0.5) onto a local grid with the
 * background's spacing and direction covering the mask and its rim, mirrored left-right when
 * `mirror` (a right-lung nodule going into the left lung keeps its pleura on the lateral side).
 */
export async function prepareNodule(lidcDir: string, n: LidcNodule, grid: Geometry, mirror: boolean): Promise<PreparedNodule> {
  const t = loadLidcConfig().transplant;
  const imgFile = join(lidcDir, 'image', `${n.name}.nii.gz`), maskFile = join(lidcDir, 'mask', `${n.name}.nii.gz`);
  const img = await readVolume(imgFile), msk = await readVolume(maskFile);
  if (img.data.length !== msk.data.length) throw fileError(maskFile, `not on the grid of ${imgFile}`);
  const wb = maskWorldBox(msk);
  if (!wb) throw fileError(maskFile, 'empty nodule mask');
  const lungHu: number[] = [];
  for (let i = 0; i < img.data.length; i++) if (!msk.data[i] && img.data[i]! < t.parenchymaBelowHu) lungHu.push(img.data[i]!);
  const margin = t.rimMm + t.blendMm + Math.max(...grid.spacing);
  const centre = [0, 1, 2].map((a) => (wb[0][a]! + wb[1][a]!) / 2);
  const ext = [0, 1, 2].map((a) => wb[1][a]! - wb[0][a]! + 2 * margin);
  // local grid: background axes, sized to cover the world box along whichever world axis each index axis runs
  const d = grid.direction;
  const size = [0, 1, 2].map((a) => {
    const w = [0, 1, 2].reduce((best, r) => (Math.abs(d[r * 3 + a]!) > Math.abs(d[best * 3 + a]!) ? r : best), 0);
    return Math.max(1, Math.ceil(ext[w]! / grid.spacing[a]!) + 1);
  }) as Vec3;
  const half = size.map((s) => (s - 1) / 2);
  const origin = [0, 1, 2].map((r) => centre[r]! - [0, 1, 2].reduce((s, a) => s + d[r * 3 + a]! * grid.spacing[a]! * half[a]!, 0)) as Vec3;
  const local: Geometry = { size, spacing: [...grid.spacing] as Vec3, origin, direction: [...grid.direction] };
  const hu = resampleToGrid(img, local, 'linear', { fill: NaN }).data;
  const mf = resampleToGrid({ ...msk, data: Float32Array.from(msk.data, (v) => (v ? 1 : 0)) }, local, 'linear', { fill: 0 }).data;
  const mask = new Uint8Array(mf.length);
  for (let i = 0; i < mf.length; i++) mask[i] = mf[i]! >= 0.5 ? 1 : 0;
  const [nx, ny, nz] = size;
  if (mirror) {
    const ax = xAxisOf(grid);
    const flip = <T extends Float32Array | Uint8Array>(a: T): void => {
      const st = [1, nx, nx * ny][ax]!, n = size[ax]!;
      for (let p = 0; p < a.length; p++) {
        const c = Math.floor(p / st) % n;
        if (c >= n - 1 - c) continue;
        const q = p + (n - 1 - 2 * c) * st;
        const tmp = a[p]!; a[p] = a[q]!; a[q] = tmp;
      }
    };
    flip(hu); flip(mask);
  }
  // centroid and surface
  let voxels = 0;
  const sum = [0, 0, 0];
  const surface: number[] = [];
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (!mask[p]) continue;
    voxels++; sum[0] += i; sum[1] += j; sum[2] += k;
    const edge = i === 0 || j === 0 || k === 0 || i === nx - 1 || j === ny - 1 || k === nz - 1
      || !mask[p - 1] || !mask[p + 1] || !mask[p - nx] || !mask[p + nx] || !mask[p - nx * ny] || !mask[p + nx * ny];
    if (edge) surface.push(i, j, k);
  }
  if (!voxels) throw fileError(maskFile, `the nodule mask vanishes at ${grid.spacing.join('×')} mm`);
  const centreIdx = sum.map((s) => Math.round(s / voxels)) as Vec3;
  // exact distance to the nearest surface voxel (boxes are small: a 32 mm nodule's is ~32³ voxels)
  const [sx, sy, sz] = grid.spacing;
  const dist = new Float32Array(mask.length);
  for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
    if (mask[p]) continue;
    let best = Infinity;
    for (let s = 0; s < surface.length; s += 3) {
      const dx = (i - surface[s]!) * sx, dy = (j - surface[s + 1]!) * sy, dz = (k - surface[s + 2]!) * sz;
      const q = dx * dx + dy * dy + dz * dz;
      if (q < best) best = q;
    }
    dist[p] = Math.sqrt(best);
  }
  return { nodule: n, size, hu, mask, dist, centre: centreIdx, parenchymaHu: lungHu.length >= 20 ? median(lungHu) : -850, voxels, mirrored: mirror };
}

/** Where a prepared nodule lands: the background voxel its centre goes to, and the target lobe. */
export interface Landing { at: Vec3; lobe: string; inLobe: number }

/**
 * Finds a place in `lobe` where at least minInLobe of the nodule's mask falls inside that lobe and
 * none of it on voxels `taken` (an earlier transplant's rim): centres are drawn among the lobe's
 * voxels deep enough for the nodule, in seeded random order. Null when none of `tries` fits.
 */
export function findLanding(rng: Rng, bg: LungBackground, prep: PreparedNodule, lobe: string, taken: Uint8Array): Landing | null {
  const t = loadLidcConfig().transplant;
  const L = bg.lobes.get(lobe);
  if (!L) return null;
  const [nx, ny, nz] = bg.ct.size, [lx, ly] = prep.size;
  const need = Math.max(Math.min(...bg.ct.spacing), 0.3 * prep.nodule.diameterMm);
  const cands: number[] = [];
  for (let p = 0; p < L.depth.length; p++) if (L.depth[p]! >= need) cands.push(p);
  if (!cands.length) return null;
  const offs: number[] = [];
  for (let p = 0; p < prep.mask.length; p++) if (prep.mask[p]) offs.push(p % lx - prep.centre[0], Math.floor(p / lx) % ly - prep.centre[1], Math.floor(p / (lx * ly)) - prep.centre[2]);
  for (let tr = 0; tr < t.tries; tr++) {
    const c = cands[rng.int(0, cands.length - 1)]!;
    const ci = c % nx, cj = Math.floor(c / nx) % ny, ck = Math.floor(c / (nx * ny));
    let inside = 0, clash = false;
    for (let s = 0; s < offs.length; s += 3) {
      const i = ci + offs[s]!, j = cj + offs[s + 1]!, k = ck + offs[s + 2]!;
      if (i < 0 || j < 0 || k < 0 || i >= nx || j >= ny || k >= nz) continue;
      const q = i + nx * (j + ny * k);
      if (taken[q]) { clash = true; break; }
      if (bg.lung[q] === L.value) inside++;
    }
    const frac = inside / prep.voxels;
    if (!clash && frac >= t.minInLobe) return { at: [ci, cj, ck], lobe, inLobe: frac };
  }
  return null;
}

/** What one transplant left behind: the lesion mask on the background grid and where it lies. */
export interface Transplanted { mask: Uint8Array; voxels: number; min: Vec3; max: Vec3; lobe: string; centroid: Vec3; backgroundHu: number; sourceHu: number }

/**
 * Pastes the nodule and its rim into `hu` (the study's copy of the background) at `land`:
 * out = w·(src + shift) + (1 − w)·bg with w = 1 on the mask and within rimMm of it, falling
 * linearly to 0 over blendMm, and 0 outside the background's lungs (the chest wall, diaphragm and
 * liver stay the background's own). shift = background parenchyma median − source parenchyma
 * median, applied in full to lung-density voxels (≤ shiftFullBelowHu) and not at all to soft
 * tissue (≥ shiftNoneAboveHu): the two scans' lung densities differ with inspiration and
 * dependency, soft tissue HU does not. The lesion mask is the nodule's mask inside the lungs.
 */
export function pasteNodule(hu: Float32Array, bg: LungBackground, prep: PreparedNodule, land: Landing, taken: Uint8Array): Transplanted {
  const t = loadLidcConfig().transplant;
  const [nx, ny, nz] = bg.ct.size, [lx, ly, lz] = prep.size;
  const off = [0, 1, 2].map((a) => land.at[a]! - prep.centre[a]!);
  // the background's parenchyma around the landing point, in the target lobe
  const L = bg.lobes.get(land.lobe)!;
  const r = [0, 1, 2].map((a) => Math.ceil(t.backgroundRadiusMm / bg.ct.spacing[a]!));
  const around: number[] = [];
  for (let k = Math.max(0, land.at[2] - r[2]!); k <= Math.min(nz - 1, land.at[2] + r[2]!); k++)
    for (let j = Math.max(0, land.at[1] - r[1]!); j <= Math.min(ny - 1, land.at[1] + r[1]!); j++)
      for (let i = Math.max(0, land.at[0] - r[0]!); i <= Math.min(nx - 1, land.at[0] + r[0]!); i++) {
        const q = i + nx * (j + ny * k);
        if (bg.lung[q] === L.value && bg.ct.data[q]! < t.parenchymaBelowHu) around.push(bg.ct.data[q]!);
      }
  const bgHu = around.length >= 20 ? median(around) : prep.parenchymaHu;
  const shift = bgHu - prep.parenchymaHu;
  const mask = new Uint8Array(hu.length);
  const min: Vec3 = [nx, ny, nz], max: Vec3 = [-1, -1, -1];
  let voxels = 0;
  const sum = [0, 0, 0];
  for (let k = 0, p = 0; k < lz; k++) for (let j = 0; j < ly; j++) for (let i = 0; i < lx; i++, p++) {
    const s = prep.hu[p]!;
    if (Number.isNaN(s)) continue;
    const bi = i + off[0]!, bj = j + off[1]!, bk = k + off[2]!;
    if (bi < 0 || bj < 0 || bk < 0 || bi >= nx || bj >= ny || bk >= nz) continue;
    const q = bi + nx * (bj + ny * bk);
    if (!bg.lung[q]) continue;
    const d = prep.dist[p]!;
    const w = prep.mask[p] || d <= t.rimMm ? 1 : d < t.rimMm + t.blendMm ? 1 - (d - t.rimMm) / t.blendMm : 0;
    if (w <= 0) continue;
    const ramp = s <= t.shiftFullBelowHu ? 1 : s >= t.shiftNoneAboveHu ? 0 : (t.shiftNoneAboveHu - s) / (t.shiftNoneAboveHu - t.shiftFullBelowHu);
    hu[q] = w * (s + shift * ramp) + (1 - w) * hu[q]!;
    taken[q] = 1;
    if (prep.mask[p]) {
      mask[q] = 1; voxels++;
      sum[0] += bi; sum[1] += bj; sum[2] += bk;
      if (bi < min[0]) min[0] = bi; if (bi > max[0]) max[0] = bi;
      if (bj < min[1]) min[1] = bj; if (bj > max[1]) max[1] = bj;
      if (bk < min[2]) min[2] = bk; if (bk > max[2]) max[2] = bk;
    }
  }
  // the lobe holding most of the lesion names its place (the target lobe, by minInLobe)
  const count = new Map<number, number>();
  for (let q = 0; q < mask.length; q++) if (mask[q]) count.set(bg.lung[q]!, (count.get(bg.lung[q]!) ?? 0) + 1);
  const top = [...count].sort((a, b) => b[1] - a[1])[0]![0];
  const lobe = loadOrganScheme().byValue.get(top)!.name;
  const centroid = indexToWorld(bg.ct, sum.map((s) => s / voxels));
  return { mask, voxels, min, max, lobe, centroid, backgroundHu: bgHu, sourceHu: prep.parenchymaHu };
}

const tx = (text: string, cls?: string): Piece => (cls ? { text, cls } : { text });

/** "the right lower lobe" or "the lower lobe of the right lung" (the lobe from the label map). */
function lobeWords(rng: Rng, lobe: string): Piece[] {
  const o = loadOrganScheme().byName.get(lobe)!;
  return rng.next() < 0.5 ? [tx('the '), tx(`${o.side} ${o.lobe} lobe`, 'location')]
    : [tx('the '), tx(`${o.lobe} lobe`, 'location'), tx(' of the '), tx(o.side!, 'location'), tx(' '), tx('lung', 'anatomy')];
}

/** One transplanted nodule of a study and how the report is to name it. */
export interface PlacedNodule { nodule: LidcNodule; done: Transplanted }

/**
 * The study's report: the background's sections in CT-RATE's order, normal or negated statements
 * for the others (writeReport), and the nodules' sentence(s) in the lung section, worded from their
 * ratings, rated diameter and landing lobe; spans exact. Returns the spans per nodule.
 */
export function lidcReport(rng: Rng, placed: PlacedNodule[], sections: string[]): { text: string; spans: Span[][]; absent: { organ: string; type: string; spans: Span[] }[] } {
  const P = loadPhrasing(), W = loadLidcConfig().words;
  const order = P.sections.filter((s) => sections.includes(s));
  const li = order.indexOf('lung');
  const before = order.slice(0, li), after = order.slice(li + 1);
  const pickAbsent = (secs: string[]) => rng.shuffle(absentCandidates(secs).filter((a) => !(a.organ === 'lung' && a.type === 'nodule'))).slice(0, rng.int(0, 2));
  const absPre = pickAbsent(before), absPost = pickAbsent(after);
  const asFinding = (a: { organ: string; type: string; section: string }) => ({ organ: a.organ, type: a.type, certainty: 'absent' as const, words: '', place: { parts: [], key: '' }, section: a.section });
  const pre = writeReport(rng.fork('pre'), absPre.map(asFinding), before);
  const post = writeReport(rng.fork('post'), absPost.map(asFinding), after);
  const words: NoduleWords[] = placed.map((p) => ({ size: diameterText(rng, p.nodule.diameterMm), desc: noduleDescriptor(rng, p.nodule), anomaly: rng.pick(W.anomaly), location: lobeWords(rng, p.done.lobe) }));
  const lung: { text: string; spans: Span[][] }[] = [];
  if (placed.length === 2 && rng.next() < W.pairProb) lung.push(renderNoduleSentence(rng, rng.pick(W.pair), words, P));
  else words.forEach((w, i) => {
    const s = renderNoduleSentence(rng, rng.pick(W.single), [w], P);
    lung.push({ text: s.text, spans: placed.map((_, k) => (k === i ? s.spans[0]! : [])) });
  });
  if (rng.next() < W.otherwiseProb) lung.push({ text: rng.pick(W.otherwiseNormal), spans: placed.map(() => []) });
  let text = '';
  const spans: Span[][] = placed.map(() => []);
  const add = (part: string): number => { if (text && part) text += ' '; const o = text.length; text += part; return o; };
  const o1 = add(pre.text);
  const absent = absPre.map((a, i) => ({ organ: a.organ, type: a.type, spans: pre.spans[i]!.map((s) => ({ ...s, start: s.start + o1, end: s.end + o1 })) }));
  for (const s of lung) {
    const o = add(s.text);
    s.spans.forEach((list, i) => { for (const sp of list) spans[i]!.push({ ...sp, start: sp.start + o, end: sp.end + o }); });
  }
  const o2 = add(post.text);
  absent.push(...absPost.map((a, i) => ({ organ: a.organ, type: a.type, spans: post.spans[i]!.map((s) => ({ ...s, start: s.start + o2, end: s.end + o2 })) })));
  return { text, spans, absent };
}

/** Lobes of the background in the order a nodule tries them: seeded, the one it must avoid last out. */
function lobeOrder(rng: Rng, bg: LungBackground, avoid: string[]): string[] {
  return rng.shuffle([...bg.lobes.keys()].filter((l) => !avoid.includes(l)));
}

/**
 * One study: the nodules transplanted into the background (each in a different lobe, so a report
 * with two tells them apart by their lobe words), the report, the masks. Null when a nodule fits
 * no lobe (a 30 mm nodule does not fit the 23 mm-deep lung bases of the slab), with the reason.
 */
export async function transplantStudy(rng: Rng, id: string, split: SynthStudy['split'], nodules: LidcNodule[], bg: LungBackground, lidcDir: string): Promise<{ study: SynthStudy | null; why?: string }> {
  const hu = Float32Array.from(bg.ct.data);
  const taken = new Uint8Array(hu.length);
  const placed: PlacedNodule[] = [];
  const used: string[] = [];
  for (const n of nodules) {
    let done: PlacedNodule | null = null;
    for (const lobe of lobeOrder(rng, bg, used)) {
      const o = loadOrganScheme().byName.get(lobe)!;
      // LIDC's frame is LPS: x < 0 is the patient's right
      const srcSide = n.lpsX < 0 ? 'right' : 'left';
      const prep = await prepareNodule(lidcDir, n, bg.ct, srcSide !== o.side);
      const land = findLanding(rng.fork(`${n.name}:${lobe}`), bg, prep, lobe, taken);
      if (!land) continue;
      done = { nodule: n, done: pasteNodule(hu, bg, prep, land, taken) };
      break;
    }
    if (!done) return { study: null, why: `${n.name} (${n.diameterMm.toFixed(1)} mm) fits no free lobe of the background` };
    placed.push(done);
    used.push(done.done.lobe);
  }
  const rep = lidcReport(rng.fork('report'), placed, bg.sections);
  const geom = { size: [...bg.ct.size] as Vec3, spacing: [...bg.ct.spacing] as Vec3, origin: [...bg.ct.origin] as Vec3, direction: [...bg.ct.direction] };
  const anomalies: SynthAnomaly[] = placed.map((p, i) => {
    const d = p.done, n = p.nodule;
    const extentMm = [0, 1, 2].map((a) => (d.max[a]! - d.min[a]! + 1) * bg.ct.spacing[a]!).sort((x, y) => y - x) as Vec3;
    return {
      id: `a${i + 1}`, organ: 'lung', type: 'nodule', certainty: 'present', spans: rep.spans[i]!,
      mask: { ...geom, data: d.mask },
      box: voxelBoxToWorld(geom, { min: d.min.map((v) => v - 0.5) as Vec3, max: d.max.map((v) => v + 0.5) as Vec3 }),
      kind: 'lidc-nodule', target: d.lobe, extentMm, lesionVoxels: d.voxels, organVoxels: bg.lobes.get(d.lobe)!.voxels,
      source: {
        dataset: 'LIDC-IDRI', patient: n.patient, nodule: n.nodule, diameterMm: n.diameterMm,
        ratings: { texture: n.texture, calcification: n.calcification, margin: n.margin, spiculation: n.spiculation, lobulation: n.lobulation },
        backgroundHu: Math.round(d.backgroundHu), sourceHu: Math.round(d.sourceHu),
      },
    };
  });
  rep.absent.forEach((a, i) => anomalies.push({ id: `a${placed.length + i + 1}`, organ: a.organ, type: a.type, certainty: 'absent', spans: a.spans }));
  const ct = new Int16Array(hu.length);
  for (let i = 0; i < hu.length; i++) ct[i] = Math.max(-1024, Math.min(3071, Math.round(hu[i]!)));
  return { study: { id, split, difficulty: nodules.length > 1 ? 'hard' : 'easy', ct: { ...geom, data: ct }, labels: { ...bg.labels, data: bg.labels.data }, report: rep.text, anomalies } };
}

export interface LidcImportOptions {
  lidcDir: string;
  /** TotalSegmentator example folder (example_ct_sm, example_seg) */
  realDir: string;
  out: string;
  /** the studies' own seed (landing places, words) */
  seed: number;
  /** the patient split's seed: every set made with one split seed shares its patients' splits */
  splitSeed: number;
  splits: LidcSplit[];
  /** nodules per study: 1, or 2 (each in another lobe, told apart by the lobe words) */
  findings: 1 | 2;
  spacing: number;
  limit?: number;
  onStudy?(done: number, total: number): void;
}

/** The short study id of a nodule: LIDC-IDRI-0004 nodule 1 → 0004-1. */
const shortName = (n: LidcNodule): string => `${n.patient.replace(/^LIDC-IDRI-/, '')}-${n.nodule}`;

/**
 * `ctground dataset import-lidc`: the nodules of the patients in `splits` (split by patient with
 * splitSeed) transplanted into the real lung background, one or two to a study, written in the
 * dataset format. Deterministic in its options; a rerun keeps finished studies. Nodules that fit
 * no lobe are listed in the result (and import-lidc.json), not silently dropped.
 */
export async function importLidc(o: LidcImportOptions): Promise<{ records: ManifestStudy[]; skipped: string[]; resumed: number }> {
  const catalog = readLidcCatalog(o.lidcDir);
  mkdirSync(o.out, { recursive: true });
  checkOrWriteOptions(o.out, { generator: 'ctground-import-lidc-1', seed: o.seed, splitSeed: o.splitSeed, splits: o.splits, findings: o.findings, spacing: o.spacing });
  const groups: { id: string; split: LidcSplit; nodules: LidcNodule[] }[] = [];
  for (const split of o.splits) {
    const mine = catalog.filter((n) => lidcSplitOf(n.patient, o.splitSeed) === split).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (o.findings === 1) for (const n of mine) groups.push({ id: `lidc-${shortName(n)}`, split, nodules: [n] });
    else {
      const order = createRng(o.seed).fork(`pairs:${split}`).shuffle([...mine]);
      for (let i = 0; i + 1 < order.length; i += 2) groups.push({ id: `lidc-${shortName(order[i]!)}-${shortName(order[i + 1]!)}`, split, nodules: [order[i]!, order[i + 1]!] });
    }
  }
  const chosen = o.limit ? groups.slice(0, o.limit) : groups;
  const bg = await loadLungBackground(o.realDir, o.spacing);
  const records: ManifestStudy[] = [], skipped: string[] = [];
  let resumed = 0;
  for (const [i, g] of chosen.entries()) {
    let rec = readRecord(o.out, g.id);
    if (rec) resumed++;
    else {
      const r = await transplantStudy(createRng(o.seed).fork(g.id), g.id, g.split, g.nodules, bg, o.lidcDir);
      if (r.study) rec = await writeStudy(o.out, r.study, `real-lidc:${bg.name}`);
      else skipped.push(`${g.id}: ${r.why}`);
    }
    if (rec) records.push(rec);
    o.onStudy?.(i + 1, chosen.length);
  }
  records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  writeManifest(o.out, records);
  writeFileAtomic(join(o.out, 'import-lidc.json'), JSON.stringify({
    source: 'LIDC-IDRI nodule crops (CC BY 3.0): Armato SG III et al., Medical Physics 38(2):915-931, 2011; TCIA doi:10.7937/K9/TCIA.2015.LO9QL9SX',
    background: bg.name, spacing: o.spacing, studies: records.length, skipped,
  }, null, 1) + '\n');
  return { records, skipped, resumed };
}
