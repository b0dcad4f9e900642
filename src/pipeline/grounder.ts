import { existsSync } from 'node:fs';
import { UserError } from '../common/index.ts';
import { loadGroundingModel, DEFAULT_MODEL_DIR, type GroundingModel } from '../model/index.ts';
import { oracleGrounder, ORACLE_NAMES, type OracleName } from '../eval/index.ts';
import { organEntriesForReportClass } from '../anatomy/index.ts';

export { DEFAULT_MODEL_DIR };

/**
 * The grounder a command uses: `--model DIR` (a trained model) or `--model oracle:NAME` (a
 * no-learning baseline from eval/). Without the flag, the shipped trained model.
 */
export async function loadGrounder(spec?: string, opts: { threads?: number } = {}): Promise<GroundingModel> {
  if (spec?.startsWith('oracle:')) {
    const name = spec.slice('oracle:'.length) as OracleName;
    if (!ORACLE_NAMES.includes(name)) throw new UserError(`--model: unknown oracle '${name}' (have: ${ORACLE_NAMES.join(', ')})`);
    return oracleGrounder(name, { organs: (cls) => organEntriesForReportClass(cls), priorVolumeMm3: 4000 });
  }
  return loadGroundingModel(spec ?? DEFAULT_MODEL_DIR, opts);
}

/**
 * The trained model if one is installed, else the organ-side oracle with a note saying so: what
 * the demo and the viewer use, so they still run on a checkout whose model has not been trained.
 */
export async function loadGrounderWithFallback(spec?: string): Promise<{ grounder: GroundingModel; note?: string }> {
  if (spec || existsSync(DEFAULT_MODEL_DIR)) return { grounder: await loadGrounder(spec) };
  return { grounder: await loadGrounder('oracle:organ-side'), note: `note: no trained model at ${DEFAULT_MODEL_DIR}; using the no-learning oracle:organ-side baseline` };
}
