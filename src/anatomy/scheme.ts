import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTaxonomy, projectRoot } from '../common/index.ts';

/** One organ or tissue of ctground's label scheme (data/anatomy/organs.json). */
export interface Organ {
  value: number;
  name: string;
  /** report organ classes whose findings may lie in this organ; the first is its own class */
  report: string[];
  side?: 'right' | 'left';
  lobe?: 'upper' | 'middle' | 'lower';
  /** anatomy phrases (lower case) that name this one structure among its report classes' organs */
  terms?: string[];
}

export interface OrganScheme {
  organs: Organ[];
  /** the largest label value; the normalized anatomy channel divides by it */
  maxValue: number;
  byName: Map<string, Organ>;
  byValue: Map<number, Organ>;
}

let cached: OrganScheme | undefined;

/** The organ scheme, validated once against the taxonomy so a typo in the JSON fails loudly. */
export function loadOrganScheme(): OrganScheme {
  if (cached) return cached;
  const file = join(projectRoot, 'data', 'anatomy', 'organs.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { organs: Organ[] };
  const reportOrgans = new Set(loadTaxonomy().reportOrgans);
  const byName = new Map<string, Organ>();
  const byValue = new Map<number, Organ>();
  for (const o of raw.organs) {
    if (!Number.isInteger(o.value) || o.value < 1 || o.value > 255) throw new Error(`${file}: organ ${o.name} has label value ${o.value} outside 1..255`);
    if (byName.has(o.name) || byValue.has(o.value)) throw new Error(`${file}: duplicate organ ${o.name}/${o.value}`);
    for (const r of o.report) if (!reportOrgans.has(r)) throw new Error(`${file}: organ ${o.name} names unknown report class '${r}'`);
    if (o.terms && !(Array.isArray(o.terms) && o.terms.every((t) => typeof t === 'string' && t === t.toLowerCase().trim() && t.length > 0))) throw new Error(`${file}: organ ${o.name}: terms must be non-empty lower-case strings`);
    byName.set(o.name, o);
    byValue.set(o.value, o);
  }
  cached = { organs: raw.organs, maxValue: Math.max(...raw.organs.map((o) => o.value)), byName, byValue };
  return cached;
}

/** The label value of an organ of the scheme by name (throws on an unknown name: a programming error). */
export function organValue(name: string): number {
  const o = loadOrganScheme().byName.get(name);
  if (!o) throw new Error(`unknown organ '${name}'`);
  return o.value;
}

export interface OrganFilter {
  side?: 'right' | 'left';
  lobe?: 'upper' | 'middle' | 'lower';
  /** only organs whose OWN class (first entry) is the report class, not those that merely may hold its findings */
  primary?: boolean;
}

/**
 * The label values where a finding of a report organ class may lie. With `primary`, only the organs
 * that are that class (lung → the five lobes); without, also the organs that can hold its findings
 * (chest → lungs, heart, ribs, ...). `side`/`lobe` narrow it where the scheme knows them.
 */
export function organsForReportClass(cls: string, filter: OrganFilter = {}): number[] {
  const out: number[] = [];
  for (const o of loadOrganScheme().organs) {
    const hit = filter.primary ? o.report[0] === cls : o.report.includes(cls);
    if (!hit) continue;
    if (filter.side && o.side && o.side !== filter.side) continue;
    if (filter.lobe && o.lobe && o.lobe !== filter.lobe) continue;
    out.push(o.value);
  }
  return out;
}

/** The report organ class an organ's own findings are reported under. */
export function reportClassOf(value: number): string | undefined {
  return loadOrganScheme().byValue.get(value)?.report[0];
}

/** Like organsForReportClass, but the organ entries (name, side, lobe) rather than bare values. */
export function organEntriesForReportClass(cls: string, filter: OrganFilter = {}): Organ[] {
  const byValue = loadOrganScheme().byValue;
  return organsForReportClass(cls, filter).map((v) => byValue.get(v)!);
}
