import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';
import { loadOrganScheme } from './scheme.ts';

/** Per axis, the [lo, hi] fraction of an organ's world box (x: 1 = patient right, y: 1 = anterior, z: 1 = superior); an absent axis is unconstrained. */
export type PlaceRegion = Partial<Record<'x' | 'y' | 'z', [number, number]>>;

interface PlaceEntry { organs: string[]; words: string[]; region: PlaceRegion }
export interface PlaceTable { marginFraction: number; places: PlaceEntry[] }

let cached: PlaceTable | undefined;

/** data/anatomy/places.json, validated once (unknown organ, bad fraction, upper-case word: a loud error). */
export function loadPlaces(): PlaceTable {
  if (cached) return cached;
  const file = join(projectRoot, 'data', 'anatomy', 'places.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as PlaceTable;
  const scheme = loadOrganScheme();
  if (!(raw.marginFraction > 0 && raw.marginFraction < 1)) throw new Error(`${file}: marginFraction must be in (0, 1)`);
  for (const p of raw.places) {
    for (const o of p.organs) if (!scheme.byName.has(o)) throw new Error(`${file}: place '${p.words[0]}' names unknown organ '${o}'`);
    if (!p.words.length || p.words.some((w) => w !== normalizeWords(w))) throw new Error(`${file}: place words must be lower-case words separated by single spaces (${p.words.join(', ')})`);
    for (const [axis, r] of Object.entries(p.region)) {
      if (!['x', 'y', 'z'].includes(axis) || !Array.isArray(r) || !(r[0] >= 0 && r[0] < r[1] && r[1] <= 1)) throw new Error(`${file}: place '${p.words[0]}' has a bad ${axis} range`);
    }
  }
  cached = raw;
  return cached;
}

function normalizeWords(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
}

/**
 * The part of an organ's box that place words name: the intersection of every entry that lists the
 * organ and one of whose words the text holds as whole words. Null when no entry applies, or when
 * they contradict each other.
 */
export function placeRegion(organ: string, text: string): PlaceRegion | null {
  const padded = ` ${normalizeWords(text)} `;
  let region: PlaceRegion | null = null;
  for (const p of loadPlaces().places) {
    if (!p.organs.includes(organ) || !p.words.some((w) => padded.includes(` ${w} `))) continue;
    const next: PlaceRegion = { ...(region ?? {}) };
    for (const axis of ['x', 'y', 'z'] as const) {
      const r = p.region[axis];
      if (!r) continue;
      const lo = Math.max(r[0], next[axis]?.[0] ?? 0), hi = Math.min(r[1], next[axis]?.[1] ?? 1);
      if (lo >= hi) return null;
      next[axis] = [lo, hi];
    }
    region = next;
  }
  return region;
}
