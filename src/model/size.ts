import { loadTaxonomy } from '../common/index.ts';
import type { GroundingAnomaly } from './types.ts';
import type { GroundingConfig, KindCalibration } from './config.ts';

const UNIT_MM: Record<string, number> = { mm: 1, cm: 10 };

/**
 * The diameter a size phrase states, mm: "12 mm" → 12, "1.2 x 0.8 cm" → √(12·8), "28x20x15 mm" →
 * ∛(28·20·15) (the sphere of the same volume as the stated axes' ellipsoid). Words without a
 * number and a unit ("small", "moderate") state none: undefined.
 */
export function statedDiameterMm(text: string): number | undefined {
  const m = /(\d+(?:\.\d+)?(?:\s*(?:x|×|by|\*)\s*\d+(?:\.\d+)?){0,2})\s*(mm|cm)\b/i.exec(text);
  if (!m) return undefined;
  const dims = m[1]!.split(/\s*(?:x|×|by|\*)\s*/i).map(Number);
  const mm = UNIT_MM[m[2]!.toLowerCase()]!;
  const d = Math.pow(dims.reduce((a, b) => a * b, 1), 1 / dims.length) * mm;
  return d > 0 && Number.isFinite(d) ? d : undefined;
}

let extentTypes: Set<string> | undefined;

/** The finding's stated size as a volume, mm³, when the report gives one that measures the finding itself. */
export function statedVolumeMm3(a: GroundingAnomaly): number | undefined {
  extentTypes ??= new Set(loadTaxonomy().anomalyTypes.filter((t) => t.sizeIsExtent).map((t) => t.id));
  if (!extentTypes.has(a.type)) return undefined;
  for (const s of a.spans) {
    if (s.class !== 'size') continue;
    const d = statedDiameterMm(s.text);
    if (d !== undefined) return (Math.PI / 6) * d ** 3;
  }
  return undefined;
}

/** The key of `typicalMm3` for an anomaly of this organ class and type (the type alone is the fallback key). */
export function typicalKey(organ: string, type: string): string {
  return `${organ}:${type}`;
}

/** A kind of finding's own calibration (`GroundingConfig.kindCalibration`), if calibration gave it one. */
export function ownKindCalibration(cfg: Pick<GroundingConfig, 'kindCalibration'>, organ: string, type: string): KindCalibration | undefined {
  return cfg.kindCalibration?.[typicalKey(organ, type)];
}

/**
 * The volume a map's support may hold, mm³ (`sizeCappedCalibration`), or undefined for no bound:
 * sizeCap × the stated volume when the report states one; else, with a typical-size cap (the kind's
 * own in `kindCalibration`, else typicalSizeCap), that factor × the typical volume of the organ's
 * findings of this type (else of the type) on the calibration data.
 */
export function mapCapMm3(cfg: GroundingConfig, a: GroundingAnomaly): number | undefined {
  const stated = statedVolumeMm3(a);
  if (stated !== undefined) return cfg.sizeCap ? cfg.sizeCap * stated : undefined;
  const factor = ownKindCalibration(cfg, a.organ, a.type)?.typicalSizeCap ?? cfg.typicalSizeCap;
  const typical = typicalVolumeMm3(cfg, a);
  return factor && typical !== undefined ? factor * typical : undefined;
}

/** The typical volume of the anomaly's organ and type (else of its type) on the calibration data, mm³, if calibration recorded one. */
export function typicalVolumeMm3(cfg: Pick<GroundingConfig, 'typicalMm3'>, a: GroundingAnomaly): number | undefined {
  return cfg.typicalMm3?.[typicalKey(a.organ, a.type)] ?? cfg.typicalMm3?.[a.type];
}

/**
 * How large the finding is expected to be, mm³: the size its report states (`statedVolumeMm3`), else
 * its kind's typical volume; undefined when neither is known. What the zoom stage decides by.
 */
export function expectedVolumeMm3(cfg: Pick<GroundingConfig, 'typicalMm3'>, a: GroundingAnomaly): number | undefined {
  return statedVolumeMm3(a) ?? typicalVolumeMm3(cfg, a);
}
