import type { Rng } from '../common/index.ts';
import { loadOrganScheme } from '../anatomy/index.ts';
import type { Canvas3, InsertedLesion } from './lesions.ts';

/** A piece of report text; with a class it becomes a span of the anomaly it describes. */
export interface Part { text: string; cls?: string }

/** Where a lesion is, in report words: phrase parts, a key that tells two places apart, its side. */
export interface Place {
  parts: Part[];
  /** equal keys = a report could not tell the two lesions apart by their location words */
  key: string;
  side?: 'right' | 'left';
  /** the report organ class, when the place decides it (thoracic vs lumbar spine) */
  organ?: string;
}

/** What the generator knows beyond the label map (phantoms know rib numbers and vertebra levels). */
export interface PlaceHints {
  bone?(world: [number, number, number]): { rib?: { n: number; side: 'right' | 'left' }; vertebra?: string };
  /** false when the lungs are only partly in view: their segments cannot be named from the label map */
  lungSegments?: boolean;
  /** the aortic segment at a point, when the field of view decides it */
  aorta?(world: [number, number, number]): string;
}

type Box = { min: [number, number, number]; max: [number, number, number] };

/** World-space bounding boxes of the organs of a label image, computed once per study. */
export class OrganBoxes {
  private boxes = new Map<number, Box>();
  constructor(c: Canvas3) {
    const [nx, ny, nz] = c.geom.size;
    const lo = new Int32Array(256 * 3).fill(1 << 30), hi = new Int32Array(256 * 3).fill(-1);
    for (let k = 0, p = 0; k < nz; k++) for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++, p++) {
      const l = c.labels[p]! * 3;
      if (!l) continue;
      if (i < lo[l]!) lo[l] = i; if (i > hi[l]!) hi[l] = i;
      if (j < lo[l + 1]!) lo[l + 1] = j; if (j > hi[l + 1]!) hi[l + 1] = j;
      if (k < lo[l + 2]!) lo[l + 2] = k; if (k > hi[l + 2]!) hi[l + 2] = k;
    }
    const d = c.geom.direction, s = c.geom.spacing, o = c.geom.origin;
    for (let l = 1; l < 256; l++) {
      if (hi[l * 3]! < 0) continue;
      const b: Box = { min: [Infinity, Infinity, Infinity], max: [-Infinity, -Infinity, -Infinity] };
      for (let corner = 0; corner < 8; corner++) {
        const ijk = [0, 1, 2].map((a) => ((corner >> a) & 1 ? hi : lo)[l * 3 + a]!);
        for (let r = 0; r < 3; r++) {
          const w = o[r]! + d[r * 3]! * s[0] * ijk[0]! + d[r * 3 + 1]! * s[1] * ijk[1]! + d[r * 3 + 2]! * s[2] * ijk[2]!;
          if (w < b.min[r]!) b.min[r] = w;
          if (w > b.max[r]!) b.max[r] = w;
        }
      }
      this.boxes.set(l, b);
    }
  }
  /** Position of a world point inside the organ's box, each axis in [0, 1] (x: 1 = patient right, y: 1 = anterior, z: 1 = superior). */
  fraction(name: string, w: readonly number[]): [number, number, number] {
    const v = loadOrganScheme().byName.get(name)!.value;
    const b = this.boxes.get(v);
    if (!b) return [0.5, 0.5, 0.5];
    return [0, 1, 2].map((a) => Math.max(0, Math.min(1, (w[a]! - b.min[a]!) / Math.max(1e-6, b.max[a]! - b.min[a]!)))) as [number, number, number];
  }
}

const ROMAN = ['', 'I', 'II', 'III', 'IV', 'V', 'VI', 'VII', 'VIII'];
const ORD = (n: number): string => `${n}${n % 10 === 1 && n !== 11 ? 'st' : n % 10 === 2 && n !== 12 ? 'nd' : n % 10 === 3 && n !== 13 ? 'rd' : 'th'}`;
const t = (text: string, cls?: string): Part => (cls ? { text, cls } : { text });

/**
 * Describes where a lesion lies in the words reports use: lobe and segment, Couinaud segment,
 * kidney side and pole, pancreatic head/body/tail, colon segment, nodal station, aortic segment,
 * rib number, vertebral level. `precise` asks for the finest level (for two lesions in one organ).
 */
export function describePlace(rng: Rng, lesion: InsertedLesion, boxes: OrganBoxes, hints: PlaceHints, precise: boolean): Place {
  const target = lesion.target;
  const organ = loadOrganScheme().byName.get(target);
  const w = lesion.centroid;
  const [fx, fy, fz] = boxes.fraction(target, w);
  const side = organ?.side;
  const style = lesion.kind.words;

  if (target.startsWith('lung_')) {
    const lobe = organ!.lobe!, s = organ!.side!;
    if (style === 'pleural_effusion') return { parts: [t(s, 'location')], key: s, side: s };
    let seg: string;
    if (lobe === 'upper') seg = fz > 0.62 ? (s === 'right' ? 'apical segment' : 'apicoposterior segment') : s === 'left' && fz < 0.3 ? 'lingular segment' : fy > 0.5 ? 'anterior segment' : 'posterior segment';
    else if (lobe === 'middle') seg = fx > 0.5 ? 'lateral segment' : 'medial segment';
    else seg = fz > 0.7 ? 'superior segment' : fy < 0.4 ? 'posterior basal segment' : fx > 0.5 === (s === 'right') ? 'lateral basal segment' : 'anterior basal segment';
    const withSeg = hints.lungSegments !== false && (precise || rng.next() < 0.4);
    const form = rng.int(0, 1);
    // "the right upper lobe" or "the upper lobe of the right lung"
    const lp = form === 0 ? [t('the '), t(`${s} ${lobe} lobe`, 'location')] : [t('the '), t(`${lobe} lobe`, 'location'), t(' of the '), t(s, 'location'), t(' '), t('lung', 'anatomy')];
    const parts = withSeg ? [t('the '), t(seg, 'location'), t(' of '), ...lp] : lp;
    return { parts, key: `${s}-${lobe}${withSeg && precise ? '-' + seg : ''}`, side: s };
  }
  switch (target) {
    case 'liver': {
      let seg: number;
      if (fx > 0.45) seg = fy > 0.5 ? (fz > 0.5 ? 8 : 5) : fz > 0.5 ? 7 : 6;
      else if (fx > 0.25) seg = 4;
      else seg = fz > 0.5 ? 2 : 3;
      const lobe = fx > 0.45 ? 'right lobe' : 'left lobe';
      const form = precise ? rng.int(0, 1) : rng.int(0, 3);
      const parts = form === 0 ? [t(`segment ${seg}`, 'location'), t(' of the '), t('liver', 'anatomy')]
        : form === 1 ? [t('the '), t('liver', 'anatomy'), t(' '), t(`segment ${ROMAN[seg]}`, 'location')]
          : form === 2 ? [t('the '), t(lobe, 'location'), t(' of the '), t('liver', 'anatomy')]
            : [t('the '), t('liver', 'anatomy')];
      return { parts, key: form <= 1 ? `seg${seg}` : form === 2 ? lobe : 'liver' };
    }
    case 'kidney_right': case 'kidney_left': {
      const s = side!;
      const pole = fz > 0.66 ? 'upper pole' : fz < 0.34 ? 'lower pole' : 'middle part';
      const withPole = precise ? rng.next() < 0.5 : rng.next() < 0.4;
      const k = [t(s, 'location'), t(' '), t('kidney', 'anatomy')];
      if (style === 'atrophy') return { parts: [t('the '), ...k], key: s, side: s };
      return { parts: withPole ? [t('the '), t(pole, 'location'), t(' of the '), ...k] : [t('the '), ...k], key: s, side: s };
    }
    case 'spleen': {
      const pole = fz > 0.6 ? 'upper pole' : fz < 0.4 ? 'lower pole' : undefined;
      if (pole && (precise || rng.next() < 0.5)) return { parts: [t('the '), t(pole, 'location'), t(' of the '), t('spleen', 'anatomy')], key: pole };
      return { parts: [t('the '), t('spleen', 'anatomy')], key: 'spleen' };
    }
    case 'pancreas': {
      const part = fx > 0.62 ? 'head' : fx > 0.33 ? 'body' : 'tail';
      return { parts: rng.next() < 0.5 ? [t('the '), t(part, 'location'), t(' of the '), t('pancreas', 'anatomy')] : [t('the '), t('pancreatic', 'anatomy'), t(' '), t(part, 'location')], key: part };
    }
    case 'gallbladder':
      return { parts: lesion.kind.shape === 'wall' && rng.next() < 0.5 ? [t('the '), t('gallbladder', 'anatomy'), t(' wall')] : [t('the '), t('gallbladder', 'anatomy')], key: 'gb' };
    case 'stomach': {
      const part = fz > 0.62 ? 'fundus' : fx > 0.55 && fz < 0.5 ? 'antrum' : 'body';
      return { parts: [t('the '), t(part, 'location'), t(' of the '), t('stomach', 'anatomy')], key: part };
    }
    case 'colon': {
      const part = fx > 0.72 ? 'ascending' : fx < 0.28 ? 'descending' : fz > 0.55 ? 'transverse' : 'sigmoid';
      return { parts: [t('the '), t(`${part} colon`, 'anatomy')], key: part };
    }
    case 'bladder': {
      const wallSide = fx > 0.65 ? 'right lateral' : fx < 0.35 ? 'left lateral' : fy < 0.5 ? 'posterior' : 'anterior';
      if (lesion.kind.shape !== 'wall') return { parts: [t('the '), t('bladder', 'anatomy')], key: 'bladder' };
      return { parts: [t('the '), t(`${wallSide} wall`, 'location'), t(' of the '), t('bladder', 'anatomy')], key: wallSide };
    }
    case 'mediastinum': {
      const s: 'right' | 'left' = fx > 0.5 ? 'right' : 'left';
      const station = fz > 0.62 ? (fy > 0.6 ? 'prevascular' : `${s} paratracheal`) : fz > 0.4 ? (Math.abs(fx - 0.5) < 0.15 ? 'subcarinal' : `${s} hilar`) : 'paraesophageal';
      const parts = rng.next() < 0.5 ? [t('the '), t(station, 'location'), t(' region of the '), t('mediastinum', 'anatomy')] : [t('the '), t('mediastinal', 'anatomy'), t(' '), t(station, 'location'), t(' station')];
      return { parts, key: station };
    }
    case 'aorta': {
      const part = hints.aorta ? hints.aorta(w) : fz > 0.86 ? 'aortic arch' : fz > 0.55 && fy > 0.55 ? 'ascending aorta' : fz > 0.42 ? 'descending aorta' : 'abdominal aorta';
      return { parts: [t('the '), t(part, 'anatomy')], key: part };
    }
    case 'ribs': {
      const b = hints.bone?.(w)?.rib;
      if (b) return { parts: [t('the '), t(b.side, 'location'), t(' '), t(ORD(b.n), 'location'), t(' '), t('rib', 'anatomy')], key: `${b.side}${b.n}`, side: b.side, organ: 'chest' };
      const s: 'right' | 'left' = fx > 0.5 ? 'right' : 'left';
      return { parts: [t('the '), t(s, 'location'), t(' '), t('ribs', 'anatomy')], key: s, side: s, organ: 'chest' };
    }
    case 'spine': {
      const v = hints.bone?.(w)?.vertebra;
      if (v) return { parts: [t('the '), t(v, 'location'), t(' '), t('vertebral body', 'anatomy')], key: v, organ: v.startsWith('T') || v.startsWith('C') ? 'chest' : 'abdomen' };
      return { parts: [t('a '), t('vertebral body', 'anatomy')], key: 'spine', organ: 'chest' };
    }
    case 'heart': return { parts: [t('the '), t('heart', 'anatomy')], key: 'heart' };
    case 'prostate': return { parts: [t('the '), t('prostate', 'anatomy')], key: 'prostate' };
    default: return { parts: [t('the '), t(target.replace(/_/g, ' '), 'anatomy')], key: target };
  }
}
