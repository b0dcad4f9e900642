import { constants as zlibConstants, createGzip, gunzipSync, gzipSync } from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';
import { fileError } from '../common/index.ts';
import { indexToWorldMatrix, det3 } from './geometry.ts';
import type { Volume, VoxelArray } from './types.ts';

/** NIfTI datatype codes (nifti1.h) with their byte sizes. */
const DATATYPES: Record<number, { name: string; bytes: number }> = {
  2: { name: 'uint8', bytes: 1 }, 4: { name: 'int16', bytes: 2 }, 8: { name: 'int32', bytes: 4 }, 16: { name: 'float32', bytes: 4 },
  64: { name: 'float64', bytes: 8 }, 256: { name: 'int8', bytes: 1 }, 512: { name: 'uint16', bytes: 2 }, 768: { name: 'uint32', bytes: 4 },
  1024: { name: 'int64', bytes: 8 }, 1280: { name: 'uint64', bytes: 8 }, 128: { name: 'rgb24', bytes: 3 }, 2304: { name: 'rgba32', bytes: 4 },
};

export interface NiftiHeaderSummary {
  version: 1 | 2;
  dims: number[];
  datatype: string;
  voxOffset: number;
  dataBytes: number;
}

export const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * The largest image a reader accepts unless told otherwise (--max-voxels): a 1024×1024×2000 CT,
 * 4 GB as int16. The header is checked against it before anything that size is allocated.
 */
export const DEFAULT_MAX_VOXELS = 1024 * 1024 * 2000;

function gzipProblem(e: unknown): string {
  const msg = String((e as Error).message);
  return /unexpected end/i.test(msg) ? 'truncated gzip data (the file was cut off)' : `corrupt gzip data (${msg})`;
}

/** Decompresses a .gz file's bytes with a message that names the file when the stream is cut or corrupt. */
export function gunzipOrThrow(file: string, bytes: Uint8Array, maxOutputLength?: number): Buffer {
  if (!isGzip(bytes)) throw fileError(file, 'not gzip data although the name ends in .gz (wrong extension or a corrupt file)');
  try {
    return gunzipSync(bytes, maxOutputLength === undefined ? {} : { maxOutputLength });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw fileError(file, `decompresses to more than ${maxOutputLength} bytes`);
    throw fileError(file, gzipProblem(e));
  }
}

/**
 * At least the first `want` decompressed bytes of a gzip stream (fewer only if the stream holds
 * fewer), inflating only a prefix of the input: what a header check needs, whatever the stream
 * would grow to. Corrupt data throws; a stream cut short just gives what it holds.
 */
export function gunzipHead(bytes: Uint8Array, want: number): Buffer {
  // each compressed byte inflates to at most ~1032 bytes, so a prefix bounds the memory too
  for (let n = 1024; ; n *= 4) {
    const head = gunzipSync(bytes.subarray(0, n), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
    if (head.length >= want || n >= bytes.length) return head;
  }
}

/**
 * A .nii.gz decompressed without trusting it: its header first (from a prefix of the stream),
 * checked and held against `maxVoxels`, then the whole stream inflated with a ceiling at the size
 * that header describes, so a small file that inflates to gigabytes (a decompression bomb, or a
 * header that lies) is refused before the memory is taken.
 */
export function gunzipNifti(file: string, bytes: Uint8Array, maxVoxels = DEFAULT_MAX_VOXELS): Buffer {
  if (!isGzip(bytes)) throw fileError(file, 'not gzip data although the name ends in .gz (wrong extension or a corrupt file)');
  let head: Buffer;
  try { head = gunzipHead(bytes, 540); } catch (e) { throw fileError(file, gzipProblem(e)); }
  const h = parseNiftiHeader(file, head, maxVoxels);
  const expected = h.voxOffset + h.dataBytes;
  if (expected > bufferConstants.MAX_LENGTH) throw fileError(file, `NIfTI header says ${h.dims.join('×')} ${h.datatype} voxels (${expected} bytes), more than one buffer can hold`);
  try {
    return gunzipSync(bytes, { maxOutputLength: Math.min(bufferConstants.MAX_LENGTH, expected + NIFTI_TRAILING_SLACK) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw fileError(file, `decompresses to more than the ${expected} bytes its header describes (${h.dims.join('×')} ${h.datatype}): a decompression bomb or a corrupt file`);
    }
    throw fileError(file, gzipProblem(e));
  }
}

/** Bytes a .nii may carry after its voxels (some writers pad) before its size counts as a lie. */
const NIFTI_TRAILING_SLACK = 1 << 20;

/**
 * Checks a NIfTI-1/-2 header against the bytes actually present, before itk-wasm sees the file:
 * itk-wasm answers a lying header with an abort or an empty image, not a message a user can act on.
 */
export function checkNiftiBytes(file: string, buf: Uint8Array, maxVoxels = DEFAULT_MAX_VOXELS): NiftiHeaderSummary {
  const h = parseNiftiHeader(file, buf, maxVoxels);
  if (h.voxOffset + h.dataBytes > buf.length) {
    throw fileError(file, `NIfTI header says ${h.dims.join('×')} ${h.datatype} voxels (${h.dataBytes} bytes from offset ${h.voxOffset}) but the image holds only ${Math.max(0, buf.length - h.voxOffset)} bytes of data (truncated file or a header that lies about its size)`);
  }
  return h;
}

/** The header fields of a NIfTI-1/-2 file (`buf` needs only the header), checked on their own. */
export function parseNiftiHeader(file: string, buf: Uint8Array, maxVoxels = DEFAULT_MAX_VOXELS): NiftiHeaderSummary {
  if (buf.length < 4) throw fileError(file, `too short to be NIfTI (${buf.length} bytes)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let le = true;
  let size = dv.getInt32(0, true);
  if (size !== 348 && size !== 540) {
    const be = dv.getInt32(0, false);
    if (be === 348 || be === 540) { le = false; size = be; } else throw fileError(file, `not a NIfTI file (header size field is ${size}, expected 348 or 540)`);
  }
  if (buf.length < size) throw fileError(file, `truncated NIfTI header (${buf.length} of ${size} bytes)`);
  const version = size === 348 ? 1 : 2;
  const dims: number[] = [];
  let datatype: number, voxOffset: number;
  if (version === 1) {
    const magic = String.fromCharCode(buf[344]!, buf[345]!, buf[346]!);
    if (magic !== 'n+1' && magic !== 'ni1') throw fileError(file, `not a NIfTI-1 file (magic '${magic.replace(/[^\x20-\x7e]/g, '?')}')`);
    if (magic === 'ni1') throw fileError(file, 'is a NIfTI header/image pair (.hdr/.img); convert it to a single .nii file');
    const nd = dv.getInt16(40, le);
    if (nd < 1 || nd > 7) throw fileError(file, `NIfTI header has an invalid number of dimensions (${nd})`);
    for (let a = 1; a <= nd; a++) dims.push(dv.getInt16(40 + 2 * a, le));
    datatype = dv.getInt16(70, le);
    voxOffset = dv.getFloat32(108, le);
    checkNifti1Geometry(file, dv, le);
  } else {
    const nd = Number(dv.getBigInt64(16, le));
    if (nd < 1 || nd > 7) throw fileError(file, `NIfTI header has an invalid number of dimensions (${nd})`);
    for (let a = 1; a <= nd; a++) dims.push(Number(dv.getBigInt64(16 + 8 * a, le)));
    datatype = dv.getInt16(12, le);
    voxOffset = Number(dv.getBigInt64(168, le));
  }
  if (dims.some((d) => !(d >= 1))) throw fileError(file, `NIfTI header has an invalid size ${dims.join('×')}`);
  const dt = DATATYPES[datatype];
  if (!dt) throw fileError(file, `NIfTI datatype code ${datatype} is not supported`);
  if (!(voxOffset >= size)) throw fileError(file, `NIfTI header has an invalid data offset (${voxOffset})`);
  const voxels = dims.reduce((p, d) => p * d, 1);
  if (!Number.isSafeInteger(voxOffset) || voxOffset > 1 << 30) throw fileError(file, `NIfTI header has an invalid data offset (${voxOffset})`);
  if (voxels > maxVoxels) throw fileError(file, `NIfTI header says ${dims.join('×')} voxels (${voxels}), over the limit of ${maxVoxels} (--max-voxels)`);
  const dataBytes = voxels * dt.bytes;
  return { version, dims, datatype: dt.name, voxOffset, dataBytes };
}

/**
 * The geometry fields a NIfTI-1 reader will use, refused when they cannot describe a grid: a
 * zero, negative or NaN pixdim would otherwise become 1 mm silently, and an infinite affine
 * entry an image "at Infinity" that breaks every later stage.
 */
function checkNifti1Geometry(file: string, dv: DataView, le: boolean): void {
  const f = (o: number): number => dv.getFloat32(o, le);
  const qcode = dv.getInt16(252, le), scode = dv.getInt16(254, le);
  const show = (xs: number[]): string => xs.map((v) => (Number.isNaN(v) ? 'NaN' : String(+v.toPrecision(6)))).join('×');
  if (scode > 0) {
    const sform = Array.from({ length: 12 }, (_, i) => f(280 + 4 * i));
    if (!sform.every(Number.isFinite)) throw fileError(file, 'NIfTI sform (srow_x/y/z) holds an infinite or NaN value');
  } else {
    // without an sform the voxel spacing is pixdim[1..3] itself
    const pix = [f(80), f(84), f(88)];
    if (!pix.every((p) => Number.isFinite(p) && p > 0)) throw fileError(file, `NIfTI pixdim ${show(pix)} is not three positive numbers (zero, negative or NaN voxel spacing)`);
    if (qcode > 0 && ![f(256), f(260), f(264), f(268), f(272), f(276)].every(Number.isFinite)) throw fileError(file, 'NIfTI qform (quaternion or offset) holds an infinite or NaN value');
  }
}

const WRITE_TYPES: [new (n: number) => VoxelArray, number, number][] = [
  [Uint8Array, 2, 8], [Int16Array, 4, 16], [Int32Array, 8, 32], [Float32Array, 16, 32], [Float64Array, 64, 64],
  [Int8Array, 256, 8], [Uint16Array, 512, 16], [Uint32Array, 768, 32],
];

/**
 * NIfTI's quaternion for a rotation (nifti1_io's mat44_to_quatern, restated): returns b, c, d and
 * qfac, the sign that absorbs a left-handed direction matrix.
 */
function quaternion(direction: number[]): { b: number; c: number; d: number; qfac: number } {
  const r = [...direction];
  let qfac = 1;
  if (det3(r) < 0) { qfac = -1; r[2] = -r[2]!; r[5] = -r[5]!; r[8] = -r[8]!; }
  const [r00, r01, r02, r10, r11, r12, r20, r21, r22] = r as [number, number, number, number, number, number, number, number, number];
  let a = r00 + r11 + r22 + 1, b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a); b = 0.25 * (r21 - r12) / a; c = 0.25 * (r02 - r20) / a; d = 0.25 * (r10 - r01) / a;
  } else {
    const xd = 1 + r00 - (r11 + r22), yd = 1 + r11 - (r00 + r22), zd = 1 + r22 - (r00 + r11);
    if (xd > 1) { b = 0.5 * Math.sqrt(xd); c = 0.25 * (r01 + r10) / b; d = 0.25 * (r02 + r20) / b; a = 0.25 * (r21 - r12) / b; }
    else if (yd > 1) { c = 0.5 * Math.sqrt(yd); b = 0.25 * (r01 + r10) / c; d = 0.25 * (r12 + r21) / c; a = 0.25 * (r02 - r20) / c; }
    else { d = 0.5 * Math.sqrt(zd); b = 0.25 * (r02 + r20) / d; c = 0.25 * (r12 + r21) / d; a = 0.25 * (r10 - r01) / d; }
    if (a < 0) { b = -b; c = -c; d = -d; }
  }
  return { b, c, d, qfac };
}

/**
 * Encodes a volume as a NIfTI-1 file (uncompressed bytes). Both qform and sform carry the affine
 * (code 1, scanner anatomical) so tools that prefer either one agree on the geometry. `headerOnly`:
 * the 352 bytes before the voxels (which then follow as voxelBytes(vol)).
 */
export function encodeNifti(vol: Volume, description = 'ctground', sclSlope = 1, headerOnly = false): Uint8Array {
  const t = WRITE_TYPES.find(([ctor]) => vol.data instanceof ctor);
  if (!t) throw new Error(`writeNifti: unsupported voxel array ${vol.data.constructor.name}`);
  const n = vol.size[0] * vol.size[1] * vol.size[2];
  if (vol.data.length !== n) throw new Error(`writeNifti: data length ${vol.data.length} does not match size ${vol.size.join('×')}`);
  const out = new Uint8Array(352 + (headerOnly ? 0 : vol.data.byteLength));
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 348, true);
  dv.setInt16(40, 3, true);
  for (let a = 0; a < 3; a++) dv.setInt16(42 + 2 * a, vol.size[a]!, true);
  for (let a = 3; a < 7; a++) dv.setInt16(42 + 2 * a, 1, true);
  dv.setInt16(70, t[1], true);
  dv.setInt16(72, t[2], true);
  const q = quaternion(vol.direction);
  dv.setFloat32(76, q.qfac, true);
  for (let a = 0; a < 3; a++) dv.setFloat32(80 + 4 * a, vol.spacing[a]!, true);
  dv.setFloat32(108, 352, true);
  // scl_slope: a reader's value is stored × slope (scl_inter 0); 1: values are stored as they are
  dv.setFloat32(112, sclSlope, true);
  out[123] = 2; // xyzt_units: mm
  const desc = new TextEncoder().encode(description.slice(0, 79));
  out.set(desc, 148);
  dv.setInt16(252, 1, true);
  dv.setInt16(254, 1, true);
  dv.setFloat32(256, q.b, true); dv.setFloat32(260, q.c, true); dv.setFloat32(264, q.d, true);
  for (let a = 0; a < 3; a++) dv.setFloat32(268 + 4 * a, vol.origin[a]!, true);
  const m = indexToWorldMatrix(vol);
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) dv.setFloat32(280 + 16 * r + 4 * c, m[r * 3 + c]!, true);
    dv.setFloat32(280 + 16 * r + 12, vol.origin[r]!, true);
  }
  out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  // Voxels are written little-endian, which is every platform Node runs on.
  if (!headerOnly) out.set(voxelBytes(vol), 352);
  return out;
}

/** A volume's voxels as the bytes a NIfTI file holds after its header (a view, not a copy). */
export const voxelBytes = (vol: Volume): Uint8Array => new Uint8Array(vol.data.buffer, vol.data.byteOffset, vol.data.byteLength);

/**
 * encodeNifti, gzipped. A uint8 image (mask, label map, probability map) is mostly runs of zeros:
 * run-length deflate writes a 512×512×300 one about 5× faster than level 4 and smaller than level 1
 * (docs/performance.md); other types keep level 4.
 */
export function encodeNiftiGz(vol: Volume, sclSlope = 1): Uint8Array {
  return gzipSync(encodeNifti(vol, 'ctground', sclSlope), gzipOptions(vol));
}

const gzipOptions = (vol: Volume) => (vol.data instanceof Uint8Array ? { level: 1, strategy: zlibConstants.Z_RLE } : { level: 4 });

/**
 * encodeNiftiGz without joining header and voxels into one buffer first (a whole-grid copy), and
 * compressed on libuv's thread pool: what writeNifti uses for a large image.
 */
export async function encodeNiftiGzStreamed(vol: Volume, sclSlope = 1): Promise<Buffer> {
  const gz = createGzip(gzipOptions(vol));
  const parts: Buffer[] = [];
  gz.on('data', (c: Buffer) => parts.push(c));
  const done = new Promise<void>((ok, fail) => { gz.on('end', ok); gz.on('error', fail); });
  gz.write(encodeNifti(vol, 'ctground', sclSlope, true));
  gz.end(voxelBytes(vol));
  await done;
  return Buffer.concat(parts);
}

const READ_TYPES: Record<string, new (b: ArrayBuffer, o: number, n: number) => VoxelArray> = {
  uint8: Uint8Array, int16: Int16Array, int32: Int32Array, float32: Float32Array, float64: Float64Array, int8: Int8Array, uint16: Uint16Array, uint32: Uint32Array,
};

/**
 * Decodes a NIfTI-1 file already checked by checkNiftiBytes, or returns null for what this reader
 * leaves to itk-wasm (NIfTI-2, big-endian, exotic datatypes, more than one volume).
 * Geometry follows the NIfTI standard's precedence, as nibabel does: sform when sform_code > 0,
 * else qform when qform_code > 0, else spacing only. The sform is kept exactly, shear included
 * (direction columns are the normalised sform columns).
 */
export function decodeNifti(buf: Uint8Array, h: NiftiHeaderSummary): Volume | null {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (h.version !== 1 || dv.getInt32(0, true) !== 348) return null;
  if (h.dims.slice(3).some((d) => d !== 1)) return null;
  const Ctor = READ_TYPES[h.datatype];
  if (!Ctor) return null;
  const size = [h.dims[0] ?? 1, h.dims[1] ?? 1, h.dims[2] ?? 1] as [number, number, number];
  const n = size[0] * size[1] * size[2];
  const f = (o: number) => dv.getFloat32(o, true);
  const qcode = dv.getInt16(252, true), scode = dv.getInt16(254, true);
  const pix = [f(80), f(84), f(88)].map((p) => (p > 0 ? p : 1));
  let m: number[], origin: [number, number, number];
  if (scode > 0) {
    m = [0, 1, 2].flatMap((r) => [f(280 + 16 * r), f(284 + 16 * r), f(288 + 16 * r)]);
    origin = [f(292), f(308), f(324)];
  } else if (qcode > 0) {
    const b = f(256), c = f(260), d = f(264);
    const a = Math.sqrt(Math.max(0, 1 - (b * b + c * c + d * d)));
    const qfac = f(76) < 0 ? -1 : 1;
    const R = [
      a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c),
      2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b),
      2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b,
    ];
    m = R.map((v, i) => v * pix[i % 3]! * (i % 3 === 2 ? qfac : 1));
    origin = [f(268), f(272), f(276)];
  } else {
    m = [pix[0]!, 0, 0, 0, pix[1]!, 0, 0, 0, pix[2]!];
    origin = [0, 0, 0];
  }
  const spacing = [0, 1, 2].map((c) => Math.hypot(m[c]!, m[3 + c]!, m[6 + c]!)) as [number, number, number];
  if (spacing.some((s) => !(s > 0) || !Number.isFinite(s))) return null;
  const direction = m.map((v, i) => v / spacing[i % 3]! || 0);
  if (Math.abs(det3(direction)) < 1e-6) return null;
  // A view on the decompressed bytes when the offset is aligned (the usual 352), else an aligned copy.
  const start = buf.byteOffset + h.voxOffset, el = h.dataBytes / n;
  let data: VoxelArray = start % el === 0
    ? new Ctor(buf.buffer as ArrayBuffer, start, n)
    : new Ctor(new Uint8Array(buf.subarray(h.voxOffset, h.voxOffset + h.dataBytes)).buffer, 0, n);
  const slope = f(112), inter = f(116);
  if (slope !== 0 && Number.isFinite(slope) && (slope !== 1 || (inter !== 0 && Number.isFinite(inter)))) {
    const scaled = new Float32Array(n);
    for (let i = 0; i < n; i++) scaled[i] = data[i]! * slope + inter;
    data = scaled;
  }
  return { data, size, spacing, origin, direction };
}
