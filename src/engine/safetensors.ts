/**
 * safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
 * data_offsets}}, then the raw little-endian bytes. Read errors are UserErrors naming the file and,
 * where one is at fault, the tensor.
 */
import { readFileSync } from 'node:fs';
import { fileError, writeFileAtomic } from '../common/index.ts';

export interface NamedArray {
  data: Float32Array | Float64Array;
  shape: number[];
}

const codes = { F32: Float32Array, F64: Float64Array } as const;

export function encodeSafetensors(tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const n = t.data.byteLength;
    header[name] = { dtype: t.data instanceof Float64Array ? 'F64' : 'F32', shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  // pad the header so the data start is 8-byte aligned, which lets readers view it without copying
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: ReadonlyMap<string, NamedArray>, metadata: Record<string, string> = {}): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export interface Safetensors {
  tensors: Map<string, NamedArray>;
  metadata: Record<string, string>;
}

export function decodeSafetensors(file: string, buf: Uint8Array): Safetensors {
  if (buf.length < 8) throw fileError(file, 'not a safetensors file (shorter than its 8-byte header length)');
  const hlen = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (hlen > buf.length - 8 || hlen > 100_000_000) throw fileError(file, `not a safetensors file (header length ${hlen} exceeds the file)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + hlen)));
  } catch {
    throw fileError(file, 'corrupt safetensors header (not JSON)');
  }
  const base = 8 + hlen;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = e as Record<string, string>; continue; }
    const entry = e as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const ctor = codes[entry.dtype as keyof typeof codes];
    if (!ctor) throw fileError(file, `tensor '${name}' has dtype ${entry.dtype}; only F32 and F64 are supported`);
    const [a, b] = entry.data_offsets ?? [];
    if (!Array.isArray(entry.shape) || typeof a !== 'number' || typeof b !== 'number' || b < a || base + b > buf.length) {
      throw fileError(file, `tensor '${name}' lies outside the file (truncated or corrupt)`);
    }
    const count = entry.shape.reduce((x, y) => x * y, 1);
    if (count * ctor.BYTES_PER_ELEMENT !== b - a) throw fileError(file, `tensor '${name}': shape [${entry.shape.join(',')}] does not match its ${b - a} bytes`);
    // copy out so the values are aligned and independent of the file buffer
    // (a Node Buffer's slice is a view into a shared pool, so copy explicitly)
    const bytes = new Uint8Array(b - a);
    bytes.set(buf.subarray(base + a, base + b));
    tensors.set(name, { data: new ctor(bytes.buffer, 0, count), shape: entry.shape });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): Safetensors {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw fileError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return decodeSafetensors(path, buf);
}
