import { Graph } from '../engine/index.ts';
import { buildTextEncoder, saveTextEncoderFolder, smallConfig, trainWordPiece, type TextEncoderConfig } from '../model/index.ts';

/**
 * A text encoder folder for when no pretrained one is at hand (tests, a fresh checkout before
 * `ctground pretrain-text`): a WordPiece vocabulary learned from the given reports and a randomly
 * initialized (seeded) encoder. Frozen random features still separate tokens; the aggregator's
 * LSTM learns on top of them.
 */
export function freshTextEncoder(dir: string, reports: string[], seed: number, size: Partial<TextEncoderConfig> = {}): void {
  const tokenizer = trainWordPiece(reports, { vocabSize: 2000, minFrequency: 1 });
  const config: TextEncoderConfig = { ...smallConfig(tokenizer.size), hiddenSize: 64, numLayers: 1, numHeads: 2, intermediateSize: 128, maxPositions: 256, ...size };
  const g = new Graph({ seed });
  const ids = g.input('ids', [1, 8], 'int64');
  const mask = g.input('mask', [1, 8]);
  const { paramNames } = buildTextEncoder(g, config, ids, mask, { dropout: 0 });
  const weights = new Map<string, Float32Array>();
  for (const [rel, full] of paramNames) weights.set(rel, g.params.get(full)!.value as Float32Array);
  saveTextEncoderFolder(dir, config, tokenizer, weights, null, { seed: String(seed), note: 'random init, not pretrained' });
}
