import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { fileError } from '../../common/index.ts';
import { readConfig, writeConfig, type TextEncoderConfig } from './config.ts';
import { WordPieceTokenizer } from './tokenizer.ts';
import { readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.ts';
import { encoderTensorShapes, mlmHeadTensorShapes, type TextEncoderWeights } from './encoder.ts';

/** A text-encoder folder: HF BERT layout (config.json, vocab.txt, model.safetensors). */
export interface TextEncoderFolder {
  dir: string;
  config: TextEncoderConfig;
  tokenizer: WordPieceTokenizer;
  /** encoder weights, HF-relative names, HF layout */
  weights: TextEncoderWeights;
  /** masked-LM head weights when the checkpoint has them (BertForMaskedLM / BertForPreTraining) */
  head: TextEncoderWeights | null;
  /** free-form metadata of the safetensors header (our checkpoints record step and seed) */
  metadata: Record<string, string>;
}

// Checkpoints converted from the original TensorFlow BERT name layer-norm parameters gamma/beta.
function aliases(name: string): string[] {
  const out = [name];
  if (name.endsWith('LayerNorm.weight')) out.push(name.replace(/weight$/, 'gamma'));
  if (name.endsWith('LayerNorm.bias')) out.push(name.replace(/bias$/, 'beta'));
  return out;
}

/**
 * Loads a HuggingFace BERT folder (ours or a user's) into encoder weights. Tensors may carry the
 * `bert.` prefix (BertForMaskedLM/PreTraining) or none (BertModel). A missing or mis-shaped tensor
 * is a UserError naming the file and the tensor.
 */
export function loadTextEncoderFolder(dir: string): TextEncoderFolder {
  for (const f of ['config.json', 'vocab.txt', 'model.safetensors']) {
    if (!existsSync(join(dir, f))) throw fileError(join(dir, f), 'missing (a text encoder folder needs config.json, vocab.txt and model.safetensors)');
  }
  const config = readConfig(join(dir, 'config.json'));
  const vocabPath = join(dir, 'vocab.txt');
  const tokenizer = WordPieceTokenizer.load(vocabPath, config.lowercase);
  if (tokenizer.size !== config.vocabSize) throw fileError(vocabPath, `${tokenizer.size} tokens but config.json says vocab_size ${config.vocabSize}`);
  const stPath = join(dir, 'model.safetensors');
  const tensors = readSafetensors(stPath);
  const hasPrefix = [...tensors.keys()].some((k) => k.startsWith('bert.'));
  const prefix = hasPrefix ? 'bert.' : '';
  const take = (name: string, shape: number[], stored: string): Float32Array | null => {
    let t: NamedTensor | undefined;
    for (const a of aliases(stored)) { t = tensors.get(a); if (t) break; }
    if (!t) return null;
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw fileError(stPath, `tensor ${stored} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] for this config`);
    }
    return t.data;
  };
  const weights: TextEncoderWeights = new Map();
  for (const [name, shape] of encoderTensorShapes(config)) {
    const d = take(name, shape, prefix + name);
    if (!d) throw fileError(stPath, `missing tensor ${prefix + name} (shape [${shape.join(', ')}])`);
    weights.set(name, d);
  }
  let head: TextEncoderWeights | null = new Map();
  for (const [name, shape] of mlmHeadTensorShapes(config)) {
    const d = take(name, shape, name);
    if (!d) { head = null; break; }
    head.set(name, d);
  }
  const metaRaw = readMetadata(stPath);
  return { dir, config, tokenizer, weights, head, metadata: metaRaw };
}

function readMetadata(path: string): Record<string, string> {
  // readSafetensors drops __metadata__; re-read just the header (small) for it.
  const buf = readFileHead(path);
  try {
    const h = JSON.parse(buf) as Record<string, unknown>;
    return (h.__metadata__ as Record<string, string> | undefined) ?? {};
  } catch {
    return {};
  }
}

function readFileHead(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    const h = Buffer.alloc(n);
    readSync(fd, h, 0, n, 8);
    return h.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Writes a text-encoder folder in HF BERT layout (BertForMaskedLM tensor names). */
export function saveTextEncoderFolder(dir: string, config: TextEncoderConfig, tokenizer: WordPieceTokenizer, weights: TextEncoderWeights, head: TextEncoderWeights | null, metadata: Record<string, string> = {}, extraConfig: Record<string, unknown> = {}, dtype: 'F32' | 'F16' = 'F32'): void {
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of encoderTensorShapes(config)) {
    const d = weights.get(name);
    if (!d) throw new Error(`saveTextEncoderFolder: no weights for ${name}`);
    tensors.set('bert.' + name, { shape, data: d });
  }
  if (head) {
    for (const [name, shape] of mlmHeadTensorShapes(config)) {
      const d = head.get(name);
      if (!d) throw new Error(`saveTextEncoderFolder: no weights for ${name}`);
      tensors.set(name, { shape, data: d });
    }
  }
  mkdirSync(dir, { recursive: true });
  // vocab and config first: a reader that finds model.safetensors finds a complete folder
  tokenizer.save(join(dir, 'vocab.txt'));
  writeConfig(join(dir, 'config.json'), config, extraConfig);
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...metadata }, dtype);
}

/**
 * Copies a trained folder's usable part (config.json, vocab.txt, weights incl. the MLM head) to
 * `dst`, by default in F16: the shipped default halves to ~8 MB and the encoder's outputs move by
 * far less than their run-to-run differences between seeds.
 */
export function shipTextEncoderFolder(src: string, dst: string, metadata: Record<string, string> = {}, dtype: 'F32' | 'F16' = 'F16', encodeWindow?: number): void {
  const f = loadTextEncoderFolder(src);
  const config = encodeWindow === undefined ? f.config : { ...f.config, encodeWindow };
  saveTextEncoderFolder(dst, config, f.tokenizer, f.weights, f.head, { ...f.metadata, ...metadata }, {}, dtype);
}
