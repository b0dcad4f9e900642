/**
 * safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets}}, then the raw little-endian bytes. One implementation for the engine's checkpoints
 * (F32/F64 with optimizer state) and for text encoders (Hugging Face folders may hold F16/BF16 and
 * integer buffers; shipped encoders are stored as F16). Read errors are UserErrors naming the file
 * and, where one is at fault, the tensor.
 */
import { readFileSync } from 'node:fs';
import { fileError, writeFileAtomic } from '../common/index.ts';

export interface NamedArray {
  data: Float32Array | Float64Array;
  shape: number[];
}

const BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

/** IEEE half → number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
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

export interface EncodeOptions {
  /** stored precision: F32 (default; F64 arrays stay F64) or F16 for shipped weights where size matters more than the last bits */
  dtype?: 'F32' | 'F16';
  /** tensors in name order, as the reference implementation writes them */
  sorted?: boolean;
}

export function encodeSafetensors(tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}, opts: EncodeOptions = {}): Uint8Array {
  const names = opts.sorted ? [...tensors.keys()].sort() : [...tensors.keys()];
  const dtypeOf = (t: NamedArray) => (opts.dtype === 'F16' ? 'F16' : t.data instanceof Float64Array ? 'F64' : 'F32');
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`safetensors: ${name} has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    const dtype = dtypeOf(t), n = count * BYTES[dtype]!;
    header[name] = { dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  // pad the header so the data start is 8-byte aligned, which lets readers view it without copying
  while ((8 + new TextEncoder().encode(json).length) % 8 !== 0) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    if (dtypeOf(tensors.get(name)!) === 'F16') {
      for (let i = 0; i < d.length; i++) view.setUint16(at + 2 * i, floatToHalf(d[i]!), true);
      at += 2 * d.length;
    } else {
      out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
      at += d.byteLength;
    }
  }
  return out;
}

export function writeSafetensors(path: string, tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}, opts: EncodeOptions = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, opts));
}

export interface Safetensors {
  tensors: Map<string, NamedArray>;
  metadata: Record<string, string>;
}

export interface DecodeOptions {
  /** skip tensors of other dtypes (a Hugging Face checkpoint's integer `position_ids`) instead of refusing the file */
  skipOther?: boolean;
}

/** F32 and F64 come back as they are stored; F16 and BF16 as Float32Array. */
export function decodeSafetensors(file: string, buf: Uint8Array, opts: DecodeOptions = {}): Safetensors {
  if (buf.length < 8) throw fileError(file, 'not a safetensors file (shorter than its 8-byte header length)');
  const hlen = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (hlen <= 0 || hlen > buf.length - 8 || hlen > 100_000_000) throw fileError(file, `not a safetensors file (header length ${hlen} for a ${buf.length}-byte file)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + hlen)));
  } catch {
    throw fileError(file, 'not a safetensors file (header is not JSON)');
  }
  const base = 8 + hlen;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = e as Record<string, string>; continue; }
    const entry = e as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const size = BYTES[entry.dtype];
    if (size === undefined) {
      if (opts.skipOther) continue;
      throw fileError(file, `tensor '${name}' has dtype ${entry.dtype}; only F32, F64, F16 and BF16 are supported`);
    }
    const [a, b] = entry.data_offsets ?? [];
    if (!Array.isArray(entry.shape) || typeof a !== 'number' || typeof b !== 'number' || b < a || base + b > buf.length) {
      throw fileError(file, `tensor '${name}' lies outside the file (truncated or corrupt)`);
    }
    const count = entry.shape.reduce((x, y) => x * y, 1);
    if (count * size !== b - a) throw fileError(file, `tensor '${name}': shape [${entry.shape.join(',')}] ${entry.dtype} does not match its ${b - a} bytes`);
    // copy out so the values are aligned and independent of the file buffer
    // (a Node Buffer's slice is a view into a shared pool, so copy explicitly)
    const bytes = new Uint8Array(b - a);
    bytes.set(buf.subarray(base + a, base + b));
    let data: Float32Array | Float64Array;
    if (entry.dtype === 'F32') data = new Float32Array(bytes.buffer, 0, count);
    else if (entry.dtype === 'F64') data = new Float64Array(bytes.buffer, 0, count);
    else {
      const dv = new DataView(bytes.buffer);
      data = new Float32Array(count);
      if (entry.dtype === 'F16') for (let i = 0; i < count; i++) data[i] = halfToFloat(dv.getUint16(2 * i, true));
      else for (let i = 0; i < count; i++) { u32[0] = dv.getUint16(2 * i, true) << 16; data[i] = f32[0]!; }
    }
    tensors.set(name, { data, shape: [...entry.shape] });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string, opts: DecodeOptions = {}): Safetensors {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw fileError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return decodeSafetensors(path, buf, opts);
}
