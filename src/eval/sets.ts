import type { ManifestStudy } from './manifest.ts';
import { iouQuartiles, num, pct, type EvalResult } from './evaluate.ts';

/**
 * What a dataset's lesions are, for ordering result tables: real lesions decide (transplanted
 * LIDC-IDRI nodules or imported annotated studies), then generated lesions on a real CT, then
 * phantoms. Read from the manifest: `background` and an anomaly's `source`.
 */
export type SetKind = 'real lesions' | 'real background' | 'synthetic';

const RANK: Record<SetKind, number> = { 'real lesions': 0, 'real background': 1, synthetic: 2 };

export function setKind(studies: readonly ManifestStudy[]): SetKind {
  const bg = (s: ManifestStudy) => s.background ?? 'imported';
  if (studies.some((s) => bg(s).startsWith('real-lidc') || bg(s) === 'imported' || s.anomalies.some((a) => (a as { source?: unknown }).source))) return 'real lesions';
  if (studies.some((s) => bg(s) === 'real')) return 'real background';
  return 'synthetic';
}

/** Sets in table order: real lesions first, then real backgrounds, then synthetic; stable within a kind. */
export function realFirst<T extends { kind: SetKind }>(sets: readonly T[]): T[] {
  return sets.map((s, i) => ({ s, i })).sort((a, b) => RANK[a.s.kind] - RANK[b.s.kind] || a.i - b.i).map(({ s }) => s);
}

/** One row per evaluated set, real-lesion sets first: found, accuracy, Dice, mIoU, IoU quartiles. */
export function formatSetTable(rows: readonly { kind: SetKind; result: EvalResult }[]): string {
  return [
    '| set | lesions | found | accuracy % | Dice % | mIoU % | IoU p25 / median / p75 |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...realFirst(rows).map(({ kind, result: r }) => {
      const q = iouQuartiles(r.anomalies).map((v) => num(v, 3)).join(' / ');
      return `| ${r.data} [${r.split}] | ${kind} | ${r.anomalies.filter((a) => a.score.hit).length}/${r.anomalies.length} | ${pct(r.all.accuracy)} | ${pct(r.all.dice)} | ${pct(r.all.miou)} | ${q} |`;
    }),
  ].join('\n');
}
