import { createRng, type Rng } from '../common/index.ts';
import { fromTotalSegmentator, loadOrganScheme, organValue } from '../anatomy/index.ts';
import { indexToWorld, readVolume, resample, resampleToGrid, voxelBoxToWorld, type Volume, type WorldBox } from '../volume/index.ts';
import { buildPhantom, loadTissues, type PhantomModifiers } from './phantom.ts';
import { enforceContrast, loadVisibilityRule, requiredCnr } from './visibility.ts';
import { insertLesion, loadLesionKinds, WHOLE_ORGAN, type Canvas3, type InsertedLesion, type LesionKind } from './lesions.ts';
import { describePlace, OrganBoxes, type PlaceHints, type Place } from './location.ts';
import { absentCandidates, loadPhrasing, writeReport, type Finding, type Span } from './report.ts';

export type Background = 'phantom' | 'real';
export type Difficulty = 'easy' | 'medium' | 'hard';

export interface SynthOptions {
  background: Background;
  /** phantom grid size (voxels per side) */
  size: number;
  /** voxel spacing in mm (phantom: isotropic grid; real: resample the CT to it; 0 = native) */
  spacing: number;
  seed: number;
  splitSeed: number;
}

export interface SynthAnomaly {
  id: string;
  organ: string;
  type: string;
  certainty: 'present' | 'uncertain' | 'absent';
  spans: Span[];
  /** lesion mask on the CT grid (absent findings have none) */
  mask?: Volume<Uint8Array>;
  box?: WorldBox;
  /** generator facts, for the difficulty report and tests */
  kind?: string;
  target?: string;
  extentMm?: [number, number, number];
  lesionVoxels?: number;
  organVoxels?: number;
  /** where a real lesion came from (transplanted LIDC-IDRI nodules: patient, nodule, ratings) */
  source?: Record<string, unknown>;
}

export interface SynthStudy {
  id: string;
  split: 'train' | 'val' | 'test';
  difficulty: Difficulty;
  ct: Volume<Int16Array>;
  labels: Volume<Uint8Array>;
  report: string;
  anomalies: SynthAnomaly[];
}

export function studyId(index: number): string {
  return `synth-${String(index).padStart(5, '0')}`;
}

/**
 * Split by a hash of the id, so adding cases never moves an existing one to another split. The
 * stream is labelled apart from the study's own (same seed and id), which decides its difficulty:
 * sharing it made every test study a hard one.
 */
export function splitOf(id: string, splitSeed: number): 'train' | 'val' | 'test' {
  const u = createRng(splitSeed).fork(`split:${id}`).next();
  return u < 0.8 ? 'train' : u < 0.9 ? 'val' : 'test';
}

function difficultyOf(u: number): Difficulty {
  return u < 0.25 ? 'easy' : u < 0.6 ? 'medium' : 'hard';
}

/** The difficulty study `index` of a dataset with this seed gets (without generating it). */
export function studyDifficulty(index: number, seed: number): Difficulty {
  return difficultyOf(createRng(seed).fork(studyId(index)).next());
}

/** The report section a lesion's organ belongs to. */
export function sectionOf(target: string): string {
  if (target.startsWith('lung_')) return 'lung';
  if (target.startsWith('kidney_')) return 'kidney';
  if (target === 'ribs' || target === 'spine' || target === 'pelvis') return 'bone';
  if (target === 'prostate') return 'bladder';
  return target;
}

interface RealBackground {
  ct: Volume<Float32Array>;
  /** the label image written with the study: TotalSegmentator organs, HU fallback elsewhere */
  labels: Volume<Uint8Array>;
  /** TotalSegmentator's organs only (0 elsewhere): lesions go only where a real segmentation says the organ is */
  segmented: Uint8Array;
  sections: string[];
}
const realCache = new Map<string, Promise<RealBackground>>();

/**
 * Where the 30-slice crop `part` sits inside `full`, found from the voxels themselves: the first
 * slice offset at which every voxel of the crop equals the full scan's. null if none does.
 */
export function findSlab(full: Volume, part: Volume): number | null {
  const [nx, ny, nz] = full.size;
  if (part.size[0] !== nx || part.size[1] !== ny || part.size[2] > nz) return null;
  const nxy = nx * ny, pz = part.size[2];
  for (let off = 0; off + pz <= nz; off++) {
    let same = true;
    for (let k = 0; k < pz && same; k += Math.max(1, pz - 1)) for (let p = 0; p < nxy; p++) if (full.data[(off + k) * nxy + p] !== part.data[k * nxy + p]) { same = false; break; }
    if (same) return off;
  }
  return null;
}

/**
 * The real CT background: TotalSegmentator's example CT with its labels. example_seg.nii.gz labels
 * example_ct_sm, a 30-slice crop of example_ct whose header still carries the uncropped scan's
 * origin: by world coordinates the labels would land 82 slices too low (in the pelvis). So the
 * crop's true place is found from the voxels (findSlab), the label map's origin corrected to it,
 * and only then resampled by world coordinates onto the full CT (slices it does not cover get the
 * HU fallback anatomy, and take no lesions); both go to `spacing` if asked.
 */
export function loadRealBackground(dir: string, spacing: number): Promise<RealBackground> {
  const key = `${dir}|${spacing}`;
  let p = realCache.get(key);
  if (!p) {
    p = (async () => {
      let ct = await readVolume(`${dir}/example_ct.nii.gz`);
      const sm = await readVolume(`${dir}/example_ct_sm.nii.gz`);
      const segSm = await readVolume(`${dir}/example_seg.nii.gz`);
      const off = findSlab(ct, sm);
      if (off === null) throw new Error(`${dir}/example_ct_sm.nii.gz: not a slab of example_ct.nii.gz, cannot place example_seg.nii.gz`);
      const segPlaced = { ...segSm, origin: indexToWorld(ct, [0, 0, off]) };
      let seg = resampleToGrid(segPlaced, ct, 'nearest', { fill: 0 });
      if (spacing > 0) { ct = resample(ct, spacing, 'linear'); seg = resampleToGrid(seg, ct, 'nearest', { fill: 0 }); }
      const hu = new Float32Array(ct.data.length);
      for (let i = 0; i < hu.length; i++) hu[i] = ct.data[i]!;
      const huVol: Volume<Float32Array> = { ...ct, data: hu };
      const labels = fromTotalSegmentator(seg, huVol);
      // Only sections whose organ the label map really has (from TotalSegmentator, not the fallback).
      const has = new Set<number>();
      const segmented = new Uint8Array(seg.data.length);
      for (let i = 0; i < seg.data.length; i++) if (seg.data[i]) { has.add(labels.data[i]!); segmented[i] = labels.data[i]!; }
      const names = [...has].map((v) => loadOrganScheme().byValue.get(v)?.name ?? '');
      const sections = [...new Set(names.map(sectionOf))];
      return { ct: huVol, labels, segmented, sections };
    })();
    realCache.set(key, p);
  }
  return p;
}

function weightedPick(rng: Rng, kinds: LesionKind[]): LesionKind {
  const total = kinds.reduce((s, k) => s + k.weight, 0);
  let u = rng.uniform(0, total);
  for (const k of kinds) { u -= k.weight; if (u <= 0) return k; }
  return kinds[kinds.length - 1]!;
}


/** Gaussian-ish 3-tap blur along each axis (partial volume of the scanner's point spread). */
function blur3(data: Float32Array, size: readonly number[], w: number): void {
  const [nx, ny, nz] = size as [number, number, number];
  const c = 1 - 2 * w;
  const line = new Float32Array(Math.max(nx, ny, nz));
  const pass = (n: number, stride: number, starts: Iterable<number>): void => {
    for (const s0 of starts) {
      for (let t = 0, p = s0; t < n; t++, p += stride) line[t] = data[p]!;
      for (let t = 0, p = s0; t < n; t++, p += stride) data[p] = line[t]! * c + ((t > 0 ? line[t - 1]! : line[t]!) + (t < n - 1 ? line[t + 1]! : line[t]!)) * w;
    }
  };
  function* rows(): Generator<number> { for (let k = 0; k < nz; k++) for (let j = 0; j < ny; j++) yield nx * (j + ny * k); }
  function* cols(): Generator<number> { for (let k = 0; k < nz; k++) for (let i = 0; i < nx; i++) yield i + nx * ny * k; }
  function* pillars(): Generator<number> { for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) yield i + nx * j; }
  pass(nx, 1, rows());
  pass(ny, nx, cols());
  pass(nz, nx * ny, pillars());
}

/**
 * Generates study `index` of a dataset: deterministic in (seed, index, options), independent of
 * the other studies (so generation can resume and run in any order).
 */
export async function synthStudy(index: number, o: SynthOptions, realDir?: string): Promise<SynthStudy> {
  const id = studyId(index);
  const rng = createRng(o.seed).fork(id);
  const kindsAll = loadLesionKinds();
  const difficulty = difficultyOf(rng.next());

  let canvas: Canvas3, hints: PlaceHints = {}, sections: string[], aneurysmMask: Uint8Array | undefined, outLabels: Uint8Array | undefined;
  let plan: { kind: LesionKind; target?: string }[];
  const nFocal = difficulty === 'easy' ? rng.int(1, 2) : difficulty === 'medium' ? rng.int(2, 3) : rng.int(3, 5);
  const planFor = (allowed: LesionKind[]): { kind: LesionKind; target?: string }[] => {
    const focal = allowed.filter((k) => !WHOLE_ORGAN.has(k.shape)), whole = allowed.filter((k) => WHOLE_ORGAN.has(k.shape));
    const out: { kind: LesionKind; target?: string }[] = [];
    if (whole.length && rng.next() < 0.35) out.push({ kind: weightedPick(rng, whole) });
    while (out.filter((p) => !WHOLE_ORGAN.has(p.kind.shape)).length < nFocal) {
      const k = weightedPick(rng, focal);
      out.push({ kind: k });
      // Hard studies pair findings in one organ (two liver lesions, both kidneys, two lobes):
      // only the location words tell them apart.
      if (difficulty === 'hard' && rng.next() < 0.6) {
        const same = focal.filter((f) => f.organ === k.organ && f.shape === 'blob');
        if (same.length) out.push({ kind: weightedPick(rng, same) });
      }
    }
    return out;
  };

  if (o.background === 'phantom') {
    plan = planFor(kindsAll);
    const modifiers: PhantomModifiers = { organScale: {} };
    for (const p of plan) {
      if (p.kind.shape === 'scale') {
        p.target = rng.pick(p.kind.targets);
        modifiers.organScale![p.target] = rng.uniform(p.kind.scale![0], p.kind.scale![1]);
      } else if (p.kind.shape === 'aneurysm') {
        modifiers.aneurysm = { t: rng.uniform(0.45, 0.8), radius: rng.uniform(p.kind.radius![0], p.kind.radius![1]), length: rng.uniform(0.04, 0.07) };
      }
    }
    const ph = buildPhantom(rng.fork('phantom'), { size: o.size, spacing: o.spacing, modifiers });
    canvas = { hu: ph.hu.data, labels: ph.labels.data, geom: ph.hu };
    aneurysmMask = ph.aneurysmMask;
    hints = {
      bone: (w) => {
        const x = (w[0] - ph.shift[0]) / ph.scale[0], y = (w[1] - ph.shift[1]) / ph.scale[1], z = (w[2] - ph.shift[2]) / ph.scale[2];
        const rib = ph.ribAt(x, y, z) ?? undefined;
        return { rib, vertebra: ph.vertebraAt(z) };
      },
    };
    sections = ['airway', 'mediastinum', 'heart', 'aorta', 'lung', 'liver', 'gallbladder', 'spleen', 'pancreas', 'adrenal', 'kidney', 'stomach', 'colon', 'bladder', 'bone'];
    if (!ph.male) plan = plan.filter((p) => !p.kind.targets.includes('prostate'));
  } else {
    if (!realDir) throw new Error('synthStudy: the real background needs the folder of the TotalSegmentator example');
    const bg = await loadRealBackground(realDir, o.spacing);
    const allowed = kindsAll.filter((k) => (k.shape === 'blob' || k.shape === 'diffuse' || k.shape === 'wall') && k.targets.some((t) => bg.sections.includes(sectionOf(t))) && !k.targets.every((t) => sectionOf(t) === 'bone'));
    plan = planFor(allowed);
    canvas = { hu: Float32Array.from(bg.ct.data), labels: bg.segmented, geom: bg.ct };
    outLabels = bg.labels.data;
    // Only the abdominal aorta is in this scan's field of view.
    hints = { aorta: () => 'abdominal aorta', lungSegments: false };
    sections = [...bg.sections, 'bone'];
  }

  // Whole-organ findings first, so focal lesions sit on the changed organ.
  plan.sort((a, b) => Number(WHOLE_ORGAN.has(b.kind.shape)) - Number(WHOLE_ORGAN.has(a.kind.shape)));
  const n = canvas.labels.length;
  const taken = new Uint8Array(n);
  const boxes = new OrganBoxes(canvas);
  const placed: { lesion: InsertedLesion; place: Place }[] = [];
  for (const p of plan) {
    const lrng = rng.fork(`lesion-${placed.length}-${p.kind.id}`);
    const sameOrgan = placed.filter((q) => q.lesion.kind.organ === p.kind.organ);
    for (let attempt = 0; attempt < 4; attempt++) {
      const keepHu = WHOLE_ORGAN.has(p.kind.shape) || !sameOrgan.length ? null : canvas.hu.slice();
      const keepTaken = sameOrgan.length ? taken.slice() : null;
      const lesion = insertLesion(lrng, canvas, p.kind, { taken, target: p.target, aneurysmMask });
      if (!lesion) break;
      const precise = sameOrgan.length > 0;
      const place = describePlace(lrng, lesion, boxes, hints, precise);
      // Two findings of one organ must be told apart by their words; otherwise put it elsewhere.
      const earlier = precise ? sameOrgan.map((q) => describePlace(lrng, q.lesion, boxes, hints, true)) : [];
      if (earlier.some((e) => e.key === place.key)) {
        if (keepHu) canvas.hu.set(keepHu);
        if (keepTaken) taken.set(keepTaken);
        continue;
      }
      sameOrgan.forEach((q, k) => { q.place = earlier[k]!; });
      placed.push({ lesion, place });
      break;
    }
  }

  // Scanner: partial-volume blur, then noise.
  const tissues = loadTissues();
  blur3(canvas.hu, canvas.geom.size, o.background === 'phantom' ? 0.18 : 0.08);
  const noiseStd = o.background === 'phantom' ? rng.uniform(tissues.noiseStd[0], tissues.noiseStd[1]) : rng.uniform(2, 6);
  // Noise from a table of normal deviates read in a seeded random order: per-voxel Box-Muller
  // costs more than the rest of the scanner model.
  const nrng = rng.fork('noise');
  const table = new Float32Array(1 << 16);
  for (let i = 0; i < table.length; i++) table[i] = nrng.normal(0, noiseStd);
  let h = (nrng.next() * 0xffffffff) >>> 0;
  const ct = new Int16Array(n);
  for (let p = 0; p < n; p++) {
    h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
    const x = canvas.hu[p]!;
    const v = Math.round(x > -990 ? x + table[h >>> 16]! : x);
    ct[p] = v < -1024 ? -1024 : v > 3071 ? 3071 : v;
  }

  // A report describes what its reader saw: every focal lesion visible on the finished CT. Moving a
  // lesion's edge can nudge a neighbour's background, so passes repeat until none had to move.
  const visibility = loadVisibilityRule();
  for (let pass = 0, moved = true; pass < 3 && moved; pass++) {
    moved = false;
    for (const { lesion } of placed) {
      if (WHOLE_ORGAN.has(lesion.kind.shape)) continue;
      const r = enforceContrast(ct, canvas.labels, lesion.mask, taken, canvas.geom.size, canvas.geom.spacing, organValue(lesion.target), lesion, requiredCnr(visibility, lesion.voxels), lesion.contrastSign);
      if (r.after !== r.before) moved = true;
    }
  }

  // Findings → report.
  const findings: Finding[] = placed.map(({ lesion, place }) => ({
    organ: place.organ ?? lesion.kind.organ,
    type: lesion.kind.type,
    // Kind-specific templates carry no hedge slot, so those findings are always stated as present.
    certainty: !WHOLE_ORGAN.has(lesion.kind.shape) && !loadPhrasing().words[lesion.kind.words]!.templates && rng.next() < 0.15 ? 'uncertain' : 'present',
    words: lesion.kind.words,
    place,
    extentMm: lesion.extentMm,
    section: sectionOf(lesion.target),
  }));
  const present = new Set(findings.map((f) => `${f.organ}/${f.type}`));
  const absent = rng.shuffle(absentCandidates(sections).filter((a) => !present.has(`${a.organ}/${a.type}`))).slice(0, rng.int(1, 3));
  for (const a of absent) findings.push({ organ: a.organ, type: a.type, certainty: 'absent', words: '', place: { parts: [], key: '' }, section: a.section });
  const report = writeReport(rng.fork('report'), findings, sections);

  const geom = { size: [...canvas.geom.size] as [number, number, number], spacing: [...canvas.geom.spacing] as [number, number, number], origin: [...canvas.geom.origin] as [number, number, number], direction: [...canvas.geom.direction] };
  const anomalies: SynthAnomaly[] = findings.map((f, i) => {
    const a: SynthAnomaly = { id: `a${i + 1}`, organ: f.organ, type: f.type, certainty: f.certainty, spans: report.spans[i]! };
    const pl = placed[i];
    if (pl) {
      const l = pl.lesion;
      a.mask = { ...geom, data: l.mask };
      // The box encloses whole voxels: index ±0.5 around the voxel centres.
      a.box = voxelBoxToWorld(geom, { min: l.min.map((v) => v - 0.5) as [number, number, number], max: l.max.map((v) => v + 0.5) as [number, number, number] });
      a.kind = l.kind.id; a.target = l.target; a.extentMm = l.extentMm; a.lesionVoxels = l.voxels; a.organVoxels = l.organVoxels;
    }
    return a;
  });
  return {
    id, split: splitOf(id, o.splitSeed), difficulty,
    ct: { ...geom, data: ct },
    labels: { ...geom, data: outLabels ?? canvas.labels },
    report: report.text,
    anomalies: anomalies.filter((a) => a.spans.some((s) => s.class === 'anomaly')),
  };
}

