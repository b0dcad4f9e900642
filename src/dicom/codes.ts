import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../common/index.ts';

/** A coded concept as DICOM's Code Sequence Macro carries it. */
export interface Code { value: string; scheme: string; meaning: string }

interface CodeTable {
  categories: Record<string, Code>;
  types: Record<string, Code & { category: string }>;
  organs: Record<string, Code>;
}

let cached: CodeTable | undefined;
function table(): CodeTable {
  cached ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'dicom', 'segment-codes.json'), 'utf8')) as CodeTable;
  return cached;
}

/**
 * The segment's coded meaning for one finding: property category and type from its anomaly type,
 * anatomic region from its organ (data/dicom/segment-codes.json). A type or organ outside the
 * table is a bug in the taxonomy's data, not the user's input.
 */
export function findingCodes(organ: string, type: string): { category: Code; type: Code; region: Code } {
  const t = table();
  const ty = t.types[type], region = t.organs[organ];
  if (!ty) throw new Error(`data/dicom/segment-codes.json: no code for anomaly type '${type}'`);
  if (!region) throw new Error(`data/dicom/segment-codes.json: no code for organ '${organ}'`);
  const category = t.categories[ty.category];
  if (!category) throw new Error(`data/dicom/segment-codes.json: type '${type}' names unknown category '${ty.category}'`);
  return { category, type: { value: ty.value, scheme: ty.scheme, meaning: ty.meaning }, region };
}

/** Every organ and type the table codes, for checking it covers the taxonomy. */
export function codedTerms(): { organs: string[]; types: string[] } {
  const t = table();
  return { organs: Object.keys(t.organs), types: Object.keys(t.types) };
}

/** Our organ for an anatomic region code, when the table has it. */
export function organOfRegion(code: Code | null): string | undefined {
  if (!code) return undefined;
  return Object.entries(table().organs).find(([, c]) => c.value === code.value && c.scheme === code.scheme)?.[0];
}
