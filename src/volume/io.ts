import { closeSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { fileError, writeFileAtomic } from '../common/index.ts';
import { checkNiftiBytes, decodeNifti, encodeNiftiGzStreamed, encodeNifti, gunzipNifti, isGzip, parseNiftiHeader, DEFAULT_MAX_VOXELS } from './nifti.ts';
import { chooseSeries, checkSliceStack, scanDicomFolder } from './dicom.ts';
import type { Vec3, Volume, VoxelArray } from './types.ts';
import { det3 } from './geometry.ts';

export interface ReadOptions {
  /** DICOM folders with several series: the series number or SeriesInstanceUID to read. */
  series?: string;
  /**
   * Who decodes a NIfTI-1 file: 'auto' (default) decodes it here from the bytes already checked,
   * about 2× faster than itk-wasm on the real CT; 'itk-wasm' always uses itk-wasm (cross-checks).
   * Other formats and unusual NIfTI files always go through itk-wasm.
   */
  niftiReader?: 'auto' | 'itk-wasm';
  /** the largest image read (its header is checked before the voxels are); default: setMaxVoxels's */
  maxVoxels?: number;
}

/**
 * The process-wide voxel limit (the CLI's --max-voxels); readVolume's maxVoxels overrides it per
 * call. Kept in the environment so worker threads (label --jobs) inherit it.
 */
export function setMaxVoxels(n: number): void {
  if (!(Number.isSafeInteger(n) && n > 0)) throw new RangeError(`setMaxVoxels: ${n} is not a positive integer`);
  process.env.CTGROUND_MAX_VOXELS = String(n);
}

export function maxVoxels(): number {
  const n = Number(process.env.CTGROUND_MAX_VOXELS);
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_MAX_VOXELS;
}

/** The first `n` bytes of a file, without reading the rest. */
function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * The voxel count an NRRD or MetaImage header declares, checked against the limit before
 * itk-wasm allocates (and decompresses) that much.
 */
function checkTextHeaderSize(file: string, kind: string, head: string, limit: number): void {
  const m = kind === 'nrrd' ? /^sizes:\s*([^\n]*)$/m.exec(head) : /^\s*DimSize\s*=\s*([^\n]*)$/m.exec(head);
  if (!m) return;
  const dims = m[1]!.trim().split(/\s+/).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw fileError(file, `header has an invalid size '${m[1]!.trim().slice(0, 60)}'`);
  const voxels = dims.reduce((p, d) => p * d, 1);
  if (voxels > limit) throw fileError(file, `header says ${dims.join('×')} voxels (${voxels}), over the limit of ${limit} (--max-voxels)`);
}

type ItkImage = {
  size: ArrayLike<number>;
  spacing: ArrayLike<number>;
  origin: ArrayLike<number>;
  direction: ArrayLike<number>;
  data: unknown;
  imageType: { dimension: number; components: number; componentType: string; pixelType?: string };
};

const KINDS: [RegExp, string][] = [
  [/\.nii\.gz$/i, 'nifti-gz'], [/\.nii$/i, 'nifti'], [/\.nrrd$/i, 'nrrd'], [/\.nhdr$/i, 'nrrd'], [/\.mha$/i, 'mha'], [/\.mhd$/i, 'mha'],
];

/**
 * itk-wasm reports geometry in ITK's LPS frame with `direction` stored row-major (element (r, c) at
 * r·3 + c, column c = index axis c). Our world is RAS, so the x and y rows change sign here and
 * nowhere else.
 */
export function fromItkImage(im: ItkImage, file: string): Volume {
  const dim = im.imageType.dimension;
  if (im.imageType.components !== 1) throw fileError(file, `has ${im.imageType.components} components per voxel; expected a scalar image`);
  const size = Array.from(im.size), sp = Array.from(im.spacing), or = Array.from(im.origin), dir = Array.from(im.direction);
  if (dim < 2 || dim > 4 || size.slice(3).some((s) => s !== 1)) throw fileError(file, `is a ${dim}D image of size ${size.join('×')}; expected a 3D volume`);
  const get = (a: number[], i: number, dflt: number) => (i < a.length ? a[i]! : dflt);
  const d3: number[] = [];
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) d3.push(r < dim && c < dim ? dir[r * dim + c]! : r === c ? 1 : 0);
  const flip = [-1, -1, 1];
  const vol: Volume = {
    data: im.data as VoxelArray,
    size: [get(size, 0, 1), get(size, 1, 1), get(size, 2, 1)],
    spacing: [get(sp, 0, 1), get(sp, 1, 1), get(sp, 2, 1)],
    origin: [-get(or, 0, 0), -get(or, 1, 0), get(or, 2, 0)] as Vec3,
    direction: d3.map((v, i) => (v * flip[Math.floor(i / 3)]! || 0)),
  };
  if (!(vol.data && ArrayBuffer.isView(vol.data)) || (vol.data as VoxelArray).length !== vol.size[0] * vol.size[1] * vol.size[2]) {
    throw fileError(file, `could not be read: ${(vol.data as VoxelArray | undefined)?.length ?? 0} voxels for size ${vol.size.join('×')}`);
  }
  if (vol.data instanceof BigInt64Array || vol.data instanceof BigUint64Array) throw fileError(file, '64-bit integer voxels are not supported');
  if (vol.spacing.some((s) => !(s > 0))) throw fileError(file, `has a non-positive voxel spacing ${vol.spacing.join('×')}`);
  return vol;
}

/** Voxel spacing outside this range (mm) is a broken header, not a scanner: 1 µm to 100 m. */
const SPACING_RANGE: [number, number] = [1e-3, 1e5];

/**
 * Every volume read, whatever its format, must describe a usable grid: finite origin, finite
 * spacing in SPACING_RANGE, and a direction matrix that is not degenerate. Anything else is
 * refused here in one line rather than failing later as "singular 3×3 matrix" or an Infinity.
 */
export function checkVolumeGeometry(file: string, v: Volume): Volume {
  const show = (xs: readonly number[]): string => xs.map((x) => (Number.isNaN(x) ? 'NaN' : String(+x.toPrecision(6)))).join('×');
  if (!v.spacing.every((s) => Number.isFinite(s) && s > 0)) throw fileError(file, `voxel spacing ${show(v.spacing)} mm is not three positive numbers`);
  if (!v.spacing.every((s) => s >= SPACING_RANGE[0] && s <= SPACING_RANGE[1])) throw fileError(file, `voxel spacing ${show(v.spacing)} mm is outside ${SPACING_RANGE[0]}–${SPACING_RANGE[1]} mm (a broken header)`);
  if (!v.origin.every(Number.isFinite)) throw fileError(file, `origin ${show(v.origin)} is not finite`);
  if (v.direction.length !== 9 || !v.direction.every(Number.isFinite)) throw fileError(file, 'orientation (direction matrix) holds an infinite or NaN value');
  if (!(Math.abs(det3(v.direction)) > 1e-3)) throw fileError(file, 'orientation (direction matrix) is degenerate: its axes do not span 3D space');
  return v;
}

/** Loading itk-wasm costs ~100 ms; only commands that read images pay it. */
async function itkReadImage(path: string): Promise<ItkImage> {
  const { readImageNode } = await import('@itk-wasm/image-io');
  return (await readImageNode(path)) as unknown as ItkImage;
}

/**
 * Runs an itk-wasm call with stdout/stderr captured: on bad input its WASM pipelines print
 * "Exception while running pipeline", the C++ reader's complaint and a debug-build hint straight
 * to the terminal, which would break the one-line error contract. The captured text is returned
 * so the reader's own complaint can go into our message.
 */
async function quietly<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; captured: string }> {
  // itk-wasm's pipelines print through console.* at call time, so swapping those catches them
  // without touching process.stdout (which the test runner's reporter and progress bars share).
  const names = ['log', 'error', 'warn', 'info'] as const;
  const saved = names.map((n) => console[n]);
  // An aborting pipeline also sets process.exitCode = 1 (emscripten's exit path); it is not ours to set.
  const exitCode = process.exitCode;
  let captured = '';
  const grab = (...args: unknown[]) => { captured += args.map(String).join(' ') + '\n'; };
  for (const n of names) console[n] = grab;
  try {
    return { value: await fn(), captured };
  } catch (error) {
    return { error, captured };
  } finally {
    names.forEach((n, i) => { console[n] = saved[i]!; });
    process.exitCode = exitCode;
  }
}

/** The informative line of what an itk-wasm pipeline printed, without its boilerplate. */
function itkComplaint(captured: string): string | undefined {
  return captured.split('\n').map((l) => l.replace(/^(stdout|stderr|exception):\s*/, '').trim())
    .find((l) => l && !/^Exception while running pipeline|^Build module in Debug mode/.test(l));
}

function oneLine(e: unknown): string {
  const s = String((e as Error)?.message ?? e).split('\n').map((l) => l.trim()).filter(Boolean);
  return (s[0] ?? 'unknown error').slice(0, 200);
}

function checkMetaImageOrNrrd(file: string, kind: string, bytes: Buffer): void {
  const head = bytes.subarray(0, 4096).toString('latin1');
  if (kind === 'nrrd' && !head.startsWith('NRRD')) throw fileError(file, 'not an NRRD file (missing the NRRD magic)');
  if (kind === 'mha' && !/^\s*(ObjectType|NDims)\s*=/m.test(head)) throw fileError(file, 'not a MetaImage file (no ObjectType/NDims header)');
}

/**
 * Reads a CT or label image: NIfTI (.nii/.nii.gz), NRRD, MetaImage (.mha/.mhd), or a folder holding
 * one DICOM series. Geometry comes back in RAS mm. Every bad input is a UserError naming the path.
 */
export async function readVolume(path: string, opts: ReadOptions = {}): Promise<Volume> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw fileError(path, 'no such file or folder');
  }
  if (st.isDirectory()) return readDicomFolder(path, opts);
  if (st.size === 0) throw fileError(path, 'empty file');
  const kind = KINDS.find(([re]) => re.test(path))?.[1];
  if (!kind) throw fileError(path, `unsupported file type '${basename(path)}' (expected .nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd or a DICOM folder)`);
  const limit = opts.maxVoxels ?? maxVoxels();
  const cannotRead = (e: unknown) => fileError(path, `cannot be read (${(e as NodeJS.ErrnoException).code ?? oneLine(e)})`);
  if (kind === 'nifti') {
    // an uncompressed NIfTI's header is checked before a file of its size is read
    let head: Buffer;
    try { head = readHead(path, 540); } catch (e) { throw cannotRead(e); }
    if (!isGzip(head)) parseNiftiHeader(path, head, limit);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw cannotRead(e);
  }
  if (kind === 'nifti-gz' || kind === 'nifti') {
    if (kind === 'nifti' && isGzip(bytes)) throw fileError(path, 'is gzip-compressed but named .nii; rename it to .nii.gz');
    const raw = kind === 'nifti-gz' ? gunzipNifti(path, bytes, limit) : bytes;
    const header = checkNiftiBytes(path, raw, limit);
    const vol = opts.niftiReader === 'itk-wasm' ? null : decodeNifti(raw, header);
    if (vol) return checkVolumeGeometry(path, vol);
  } else {
    checkMetaImageOrNrrd(path, kind, bytes);
    checkTextHeaderSize(path, kind, bytes.subarray(0, 4096).toString('latin1'), limit);
  }
  const r = await quietly(() => itkReadImage(path));
  if (r.error !== undefined || !r.value) {
    const why = itkComplaint(r.captured) ?? (typeof r.error === 'number' ? 'the image reader aborted' : oneLine(r.error));
    throw fileError(path, `could not be read as ${kind.replace('-gz', '')} (${why.slice(0, 200)})`);
  }
  return checkVolumeGeometry(path, fromItkImage(r.value, path));
}

async function readDicomFolder(dir: string, opts: ReadOptions): Promise<Volume> {
  // itk-wasm mounts each file's folder into its own file system, where a symlinked folder does not resolve
  let real = dir;
  try { real = realpathSync(dir); } catch { /* unreadable: the scan below names the problem */ }
  const series = chooseSeries(dir, scanDicomFolder(real), opts.series);
  const files = checkSliceStack(dir, series).map((f) => realpathSync(f));
  const { readImageDicomFileSeriesNode } = await import('@itk-wasm/dicom');
  const r = await quietly(() => readImageDicomFileSeriesNode({ inputImages: files, singleSortedSeries: false }));
  const im = r.value?.outputImage as unknown as ItkImage | undefined;
  if (r.error !== undefined || !im) {
    const why = itkComplaint(r.captured) ?? (r.error === undefined ? 'no image returned' : typeof r.error === 'number' ? 'the DICOM reader aborted' : oneLine(r.error));
    throw fileError(dir, `DICOM series could not be read (${why.slice(0, 200)})`);
  }
  const vol = checkVolumeGeometry(dir, fromItkImage(im, dir));
  if (vol.size[2] !== files.length) throw fileError(dir, `DICOM series has ${files.length} slice files but ${vol.size[2]} slices were read`);
  return vol;
}

/**
 * Writes a NIfTI-1 file, gzip-compressed when the name ends in .gz. The write is atomic: an
 * interrupted run never leaves a half-written map behind. `sclSlope`: the header's scale (a reader's
 * value = stored × slope), PROBABILITY_SLOPE for a probability map stored as uint8.
 */
export async function writeNifti(path: string, vol: Volume, opts: { sclSlope?: number } = {}): Promise<void> {
  if (!/\.nii(\.gz)?$/i.test(path)) throw fileError(path, 'output name must end in .nii or .nii.gz');
  const slope = opts.sclSlope ?? 1;
  writeFileAtomic(path, /\.gz$/i.test(path) ? await encodeNiftiGzStreamed(vol, slope) : encodeNifti(vol, 'ctground', slope));
}

const COMPONENT_TYPES: [new (n: number) => VoxelArray, string][] = [
  [Uint8Array, 'uint8'], [Int8Array, 'int8'], [Uint16Array, 'uint16'], [Int16Array, 'int16'], [Uint32Array, 'uint32'],
  [Int32Array, 'int32'], [Float32Array, 'float32'], [Float64Array, 'float64'],
];

/** The inverse of fromItkImage: RAS back to ITK's LPS, direction row-major. */
export function toItkImage(vol: Volume): ItkImage & Record<string, unknown> {
  const componentType = COMPONENT_TYPES.find(([c]) => vol.data instanceof c)?.[1];
  if (!componentType) throw new Error(`writeVolume: unsupported voxel array ${vol.data.constructor.name}`);
  const flip = [-1, -1, 1];
  return {
    imageType: { dimension: 3, componentType, pixelType: 'Scalar', components: 1 },
    name: 'ctground',
    origin: [-vol.origin[0], -vol.origin[1], vol.origin[2]],
    spacing: [...vol.spacing],
    direction: Float64Array.from(vol.direction, (v, i) => v * flip[Math.floor(i / 3)]! || 0),
    size: [...vol.size],
    data: vol.data,
    metadata: new Map(),
  };
}

/**
 * Writes any format readVolume reads from a file: NIfTI through writeNifti, NRRD and MetaImage
 * through itk-wasm (compressed).
 */
export async function writeVolume(path: string, vol: Volume): Promise<void> {
  if (/\.nii(\.gz)?$/i.test(path)) return writeNifti(path, vol);
  if (!/\.(nrrd|mha)$/i.test(path)) throw fileError(path, 'output name must end in .nii, .nii.gz, .nrrd or .mha');
  const { writeImageNode } = await import('@itk-wasm/image-io');
  const tmp = join(dirname(path), `.${basename(path, extname(path))}.${process.pid}.tmp${extname(path)}`);
  mkdirSync(dirname(path), { recursive: true });
  try {
    await writeImageNode(toItkImage(vol) as never, tmp, { useCompression: true });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}
