import { readFileSync } from 'node:fs';
import { fileError, writeFileAtomic } from '../../common/index.ts';

/** One tensor of a safetensors file, converted to float32 (HF checkpoints may be F16/BF16/F64). */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

const SIZES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * Reads a safetensors file (8-byte little-endian header length, JSON header, raw little-endian
 * data). Only float tensors are returned; integer tensors (HF's `position_ids` buffer) are
 * skipped because an encoder has no use for them.
 */
export function readSafetensors(path: string): Map<string, NamedTensor> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw fileError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (buf.length < 8) throw fileError(path, 'not a safetensors file (shorter than its 8-byte header length)');
  const n = Number(buf.readBigUInt64LE(0));
  if (n <= 0 || 8 + n > buf.length) throw fileError(path, `not a safetensors file (header length ${n} for a ${buf.length}-byte file)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw fileError(path, 'not a safetensors file (header is not JSON)');
  }
  const base = 8 + n;
  const out = new Map<string, NamedTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const size = SIZES[t.dtype];
    if (size === undefined) continue;
    const [a, b] = t.data_offsets;
    const count = t.shape.reduce((x, y) => x * y, 1);
    if (b - a !== count * size || base + b > buf.length) throw fileError(path, `tensor ${name}: data range ${a}..${b} does not fit shape [${t.shape.join(',')}] ${t.dtype}`);
    const bytes = buf.subarray(base + a, base + b);
    const data = new Float32Array(count);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (t.dtype === 'F32') for (let i = 0; i < count; i++) data[i] = dv.getFloat32(4 * i, true);
    else if (t.dtype === 'F64') for (let i = 0; i < count; i++) data[i] = dv.getFloat64(8 * i, true);
    else if (t.dtype === 'F16') for (let i = 0; i < count; i++) data[i] = halfToFloat(dv.getUint16(2 * i, true));
    else {
      const tmp = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < count; i++) { tmp.setUint32(0, dv.getUint16(2 * i, true) << 16, true); data[i] = tmp.getFloat32(0, true); }
    }
    out.set(name, { shape: [...t.shape], data });
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 → IEEE half, round to nearest even; overflow → ±Inf, tiny values → subnormals/0. */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/**
 * Writes tensors as safetensors (names sorted, as the reference implementation does), in F32 or,
 * for shipped weights where size matters more than the last bits, F16.
 */
export function writeSafetensors(path: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}, dtype: 'F32' | 'F16' = 'F32'): void {
  const size = dtype === 'F16' ? 2 : 4;
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((x, y) => x * y, 1);
    if (count !== t.data.length) throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    header[name] = { dtype, shape: t.shape, data_offsets: [off, off + size * count] };
    off += size * count;
  }
  let json = JSON.stringify(header);
  // pad the header so the data starts 8-byte aligned (readers may map it as typed arrays)
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hlen = Buffer.byteLength(json);
  const out = Buffer.alloc(8 + hlen + off);
  out.writeBigUInt64LE(BigInt(hlen), 0);
  out.write(json, 8, 'utf8');
  let o = 8 + hlen;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    if (dtype === 'F16') {
      for (let i = 0; i < d.length; i++) out.writeUInt16LE(floatToHalf(d[i]!), o + 2 * i);
      o += 2 * d.length;
    } else {
      Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(out, o);
      o += d.byteLength;
    }
  }
  writeFileAtomic(path, out);
}
