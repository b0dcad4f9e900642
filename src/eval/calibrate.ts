import { MIOU_THRESHOLDS, mean } from './metrics.ts';
import { meanIouAt, type AnomalyResult } from './evaluate.ts';

/** The calibration settings of one grid point (0: that step off). */
export interface CalibrationSettings {
  minPeak: number;
  temperature: number;
  /** 0: no size cap */
  sizeCap: number;
  /** 0: no place prior */
  placePrior: number;
  /** 0: no size cap for findings whose report states no size */
  typicalSizeCap: number;
  /** 0: no contrast gate */
  contrastGate: number;
}

/** One point of a map-calibration grid, scored over the pooled validation anomalies. */
export interface CalibrationPoint extends CalibrationSettings {
  /** anomalies grounded by the paper's criterion (IoU > 0.1 at threshold 0.1) */
  hits: number;
  n: number;
  miou: number;
  /** mean IoU at each of MIOU_THRESHOLDS */
  iouAt: number[];
}

export function calibrationPoint(settings: CalibrationSettings, results: readonly AnomalyResult[]): CalibrationPoint {
  return {
    ...settings, n: results.length, hits: results.filter((r) => r.score.hit).length,
    miou: mean(results.map((r) => r.score.miou)), iouAt: meanIouAt(results),
  };
}

/**
 * The calibration a model ships with: the grid point grounding the most validation anomalies (the
 * paper's accuracy), ties to the higher mIoU; then the region threshold of `ground`/`label` = the
 * evaluated threshold with the best mean IoU at that point, kept below minPeak (a map lifted by the
 * minPeak rule peaks at minPeak, and must still get a region).
 */
export function chooseCalibration(points: readonly CalibrationPoint[]): { best: CalibrationPoint; regionThreshold: number | undefined } {
  if (points.length === 0) throw new Error('chooseCalibration: an empty grid');
  const best = points.reduce((b, p) => (p.hits > b.hits || (p.hits === b.hits && p.miou > b.miou) ? p : b));
  let regionThreshold: number | undefined, top = -Infinity;
  MIOU_THRESHOLDS.forEach((t, k) => {
    if ((best.minPeak > 0 && t >= best.minPeak) || best.iouAt[k]! <= top) return;
    top = best.iouAt[k]!;
    regionThreshold = t;
  });
  return { best, regionThreshold };
}
