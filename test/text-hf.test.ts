import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../src/common/index.ts';
import { loadTextEncoderFolder, readHfSafetensors, writeHfSafetensors, floatToHalf, encoderTensorShapes } from '../src/model/text/index.ts';
import { writeTinyHfBert, tinyConfig as tiny, TINY_VOCAB } from './text-reference.ts';

test('text HF loading: a tiny BERT folder in HF layout loads (with or without bert. prefix, gamma/beta names)', () => {
  for (const variant of [{}, { prefix: 'bert.' }, { gammaBeta: true }]) {
    const dir = mkdtempSync(join(tmpdir(), 'ctg-hf-'));
    try {
      const w = writeTinyHfBert(dir, variant);
      const f = loadTextEncoderFolder(dir);
      assert.equal(f.config.numLayers, 2);
      assert.equal(f.tokenizer.size, 12);
      assert.equal(f.head, null);
      assert.equal(f.weights.size, encoderTensorShapes(tiny).size);
      for (const [n, d] of w) assert.deepEqual(f.weights.get(n), d, n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('text HF loading: a missing or mis-shaped tensor is a UserError naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-hf-'));
  try {
    writeTinyHfBert(dir, { drop: 'encoder.layer.1.attention.self.key.bias' });
    assert.throws(() => loadTextEncoderFolder(dir), (e: unknown) => e instanceof UserError && /model\.safetensors: missing tensor encoder\.layer\.1\.attention\.self\.key\.bias/.test(e.message));
    writeTinyHfBert(dir, { prefix: 'bert.', reshape: 'encoder.layer.0.intermediate.dense.weight' });
    assert.throws(() => loadTextEncoderFolder(dir), (e: unknown) => e instanceof UserError && /tensor bert\.encoder\.layer\.0\.intermediate\.dense\.weight has shape \[17, 8\], expected \[16, 8\]/.test(e.message));
    rmSync(join(dir, 'vocab.txt'));
    assert.throws(() => loadTextEncoderFolder(dir), (e: unknown) => e instanceof UserError && /vocab\.txt: missing/.test(e.message));
    writeFileSync(join(dir, 'vocab.txt'), TINY_VOCAB.slice(0, 11).join('\n'));
    assert.throws(() => loadTextEncoderFolder(dir), (e: unknown) => e instanceof UserError && /11 tokens but config\.json says vocab_size 12/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text safetensors: F16, BF16 and integer buffers (HF position_ids) read as HF writes them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctg-st-'));
  try {
    // hand-built file: F16 [1, -2, 0.5], BF16 [3.0, -0.25], I64 position_ids [0, 1]
    const header = JSON.stringify({ a: { dtype: 'F16', shape: [3], data_offsets: [0, 6] }, b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] }, 'bert.embeddings.position_ids': { dtype: 'I64', shape: [1, 2], data_offsets: [10, 26] } });
    const body = Buffer.alloc(26);
    [0x3c00, 0xc000, 0x3800].forEach((h, i) => body.writeUInt16LE(h, 2 * i));
    [0x4040, 0xbe80].forEach((h, i) => body.writeUInt16LE(h, 6 + 2 * i));
    body.writeBigInt64LE(0n, 10); body.writeBigInt64LE(1n, 18);
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(header.length));
    const p = join(dir, 'x.safetensors');
    writeFileSync(p, Buffer.concat([len, Buffer.from(header), body]));
    const t = readHfSafetensors(p);
    assert.deepEqual([...t.get('a')!.data], [1, -2, 0.5]);
    assert.deepEqual([...t.get('b')!.data], [3, -0.25]);
    assert.equal(t.has('bert.embeddings.position_ids'), false);
    writeFileSync(p, Buffer.from('garbage'));
    assert.throws(() => readHfSafetensors(p), /x\.safetensors: not a safetensors file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text safetensors: float → half conversion rounds to nearest even and round-trips through the reader', () => {
  // the error bounds are IEEE half precision: relative 2^-11 for normals, absolute 2^-25 below
  const dir = mkdtempSync(join(tmpdir(), 'ctg-f16-'));
  try {
    const vals = [0, -0, 1, -2, 0.5, 65504, 1e-7, 6.1e-5, 3.14159, -123.456, 70000, 2 ** -24, 2 ** -25 * 1.5];
    const p = join(dir, 'h.safetensors');
    writeHfSafetensors(p, new Map([['x', { shape: [vals.length], data: Float32Array.from(vals) }]]), {}, 'F16');
    const back = [...readHfSafetensors(p).get('x')!.data];
    vals.forEach((v, i) => {
      const b = back[i]!;
      if (Math.abs(v) > 65520) assert.equal(b, Math.sign(v) * Infinity);
      else if (Math.abs(v) >= 6.2e-5) assert.ok(Math.abs(b - v) <= Math.abs(v) * 2 ** -11, `${v} → ${b}`);
      else assert.ok(Math.abs(b - v) <= 2 ** -25, `${v} → ${b}`);
    });
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even (1.0)
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie → even (upwards)
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
