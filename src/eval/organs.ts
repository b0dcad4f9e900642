import { loadOrganScheme, organsForReportClass } from '../anatomy/index.ts';
import type { OrganLookup } from './oracles.ts';

/**
 * Report organ class → labels of ctground's organ scheme. The organs that ARE the class come first
 * (lung → its five lobes); a region class with no organ of its own (chest, abdomen) falls back to
 * every organ that may hold its findings.
 */
export const schemeOrganLookup: OrganLookup = (cls) => {
  const scheme = loadOrganScheme();
  let values = organsForReportClass(cls, { primary: true });
  if (values.length === 0) values = organsForReportClass(cls);
  return values.map((v) => {
    const o = scheme.byValue.get(v)!;
    return { value: v, name: o.name, side: o.side, lobe: o.lobe };
  });
};
