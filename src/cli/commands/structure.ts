import { Progress, UserError, fileError, loadTaxonomy } from '../../common/index.ts';
import { parseFlags, intFlag } from '../args.ts';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { charClassRuns, devAnomalyProblem, evaluateDevSet, formatEvaluation, loadDevSet, readCsvColumn, readReport, checkReportText, readText, structureReport, type Certainty, type DevItem, type StructuredReport } from '../../report/index.ts';
import { readManifest, readReportText } from '../../eval/index.ts';

export const summary = 'structure a report into anomalies (or --eval FIXTURES|DATASET)';

export const USAGE = `usage: ctground structure FILE|- [--json] [--compact]
       ctground structure FILE --jsonl            one JSON string per line in, one result per line out
       ctground structure --csv FILE [--column Findings_EN] [--limit N]   (or: FILE --csv COLUMN)
       ctground structure --eval FIXTURES.jsonl|DATASET_DIR [--json] [--verbose]
                                                  (a dataset: every report against its manifest's anomalies, each word of their location phrases)`;

/** A dataset's reports as dev-set items: the manifest's anomalies are the gold, their location phrases its places. */
function datasetItems(dir: string): DevItem[] {
  return readManifest(dir).map((s) => ({
    id: s.id, text: readReportText(dir, s),
    anomalies: s.anomalies.map((a) => {
      const problem = devAnomalyProblem(a);
      if (problem) throw fileError(join(dir, 'manifest.jsonl'), `study ${s.id}: ${problem}`);
      return { organ: a.organ, type: a.type, certainty: a.certainty as Certainty, location: a.spans.filter((x) => x.class === 'location').flatMap((x) => x.text.split(/\s+/)) };
    }),
  }));
}

/** The JSON result of the issue: sentences with their organ, phrases, and per anomaly its phrase, related phrases and m_t. */
export function toJson(r: StructuredReport, withCharClasses: boolean): Record<string, unknown> {
  return {
    sentences: r.sentences.map((s) => ({ start: s.start, end: s.end, organ: s.organs[0] ?? null, organs: s.organs, ...(s.section ? { section: s.section } : {}) })),
    phrases: r.phrases,
    anomalies: r.anomalies.map((a) => ({
      id: a.id,
      organ: a.organ,
      type: a.type,
      certainty: a.certainty,
      sentence: a.sentence,
      anomaly: { start: a.anomaly.start, end: a.anomaly.end, text: a.anomaly.text },
      related: a.spans.filter((s) => !(s.start === a.anomaly.start && s.end === a.anomaly.end)),
      spans: a.spans,
      // m_t as runs [start, end, 1 + class index] over a text of `length` characters (a dense array
      // per anomaly made the output quadratic in the report length)
      ...(withCharClasses ? { charClasses: { length: r.text.length, runs: charClassRuns(r.text.length, a) } } : {}),
    })),
  };
}

const COLORS: Record<string, string> = {
  anomaly: '\x1b[1;31m', anatomy: '\x1b[1;34m', location: '\x1b[36m', size: '\x1b[33m', property: '\x1b[35m',
  density: '\x1b[32m', certainty: '\x1b[1;33m', change: '\x1b[94m', diagnosis: '\x1b[95m',
};

/** The sentence of an anomaly with its related phrases marked: colours on a terminal, [text|class] otherwise. */
function highlight(r: StructuredReport, a: StructuredReport['anomalies'][number], color: boolean): string {
  const s = r.sentences[a.sentence]!;
  let out = '';
  let at = s.start;
  for (const sp of a.spans) {
    if (sp.start < at || sp.end > s.end) continue;
    out += r.text.slice(at, sp.start);
    out += color ? `${COLORS[sp.class] ?? ''}${sp.text}\x1b[0m` : `[${sp.text}|${sp.class}]`;
    at = sp.end;
  }
  return (out + r.text.slice(at, s.end)).replace(/\s+/g, ' ');
}

function printHuman(r: StructuredReport): void {
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  if (r.anomalies.length === 0) {
    console.log(`${r.sentences.length} sentences, no anomalies found`);
    return;
  }
  const rows = r.anomalies.map((a) => [a.id, a.organ, a.type, a.certainty, a.anomaly.text, a.spans.filter((s) => s.class === 'location' || s.class === 'anatomy').map((s) => s.text).join(' ')]);
  const head = ['id', 'organ', 'type', 'certainty', 'anomaly', 'where'];
  const w = head.map((h, i) => Math.min(40, Math.max(h.length, ...rows.map((row) => row[i]!.length))));
  console.log(head.map((h, i) => h.padEnd(w[i]!)).join('  '));
  for (const [k, row] of rows.entries()) {
    console.log(row.map((c, i) => c.slice(0, 40).padEnd(w[i]!)).join('  '));
    console.log(`    ${highlight(r, r.anomalies[k]!, color)}`);
  }
  if (color) console.log('\n' + loadTaxonomy().phraseClasses.map((c) => `${COLORS[c]}${c}\x1b[0m`).join(' '));
  const counts = { present: 0, uncertain: 0, absent: 0 };
  for (const a of r.anomalies) counts[a.certainty]++;
  console.log(`${r.sentences.length} sentences, ${r.anomalies.length} anomalies (${counts.present} present, ${counts.uncertain} uncertain, ${counts.absent} absent)`);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    json: { type: 'boolean' },
    jsonl: { type: 'boolean' },
    csv: { type: 'string' },
    column: { type: 'string' },
    eval: { type: 'string' },
    limit: { type: 'string' },
    compact: { type: 'boolean' },
    verbose: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) { console.log(USAGE); return 0; }
  // `ctground structure --csv … | head` closes the pipe early: stop quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
  const withCharClasses = !values.compact;

  if (values.eval !== undefined) {
    const dataset = existsSync(values.eval) && statSync(values.eval).isDirectory();
    const ev = evaluateDevSet(dataset ? datasetItems(values.eval) : loadDevSet(values.eval));
    if (values.json) console.log(JSON.stringify({ ...ev, errors: values.verbose ? ev.errors : undefined }));
    else console.log(formatEvaluation(ev, values.verbose));
    return 0;
  }

  if (values.csv !== undefined) {
    // Two spellings: --csv FILE [--column NAME], or FILE --csv COLUMN (issue 4).
    const [file, column] = values.column !== undefined || positionals.length === 0 ? [values.csv, values.column ?? 'Findings_EN'] : [positionals[0]!, values.csv];
    const { ids, texts } = readCsvColumn(file, column);
    const n = Math.min(texts.length, intFlag(values.limit, 'limit', texts.length));
    const progress = new Progress('structure', n, 'reports');
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      out.push(JSON.stringify({ id: ids[i], ...toJson(structureReport(texts[i]!), withCharClasses) }));
      if (out.length >= 64) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
      progress.tick();
    }
    if (out.length) process.stdout.write(out.join('\n') + '\n');
    progress.finish();
    return 0;
  }

  const file = positionals[0];
  if (file === undefined) throw new UserError('structure: give a report FILE or - for stdin', 2, USAGE);
  if (positionals.length > 1) throw new UserError(`structure: one report file at a time (got ${positionals.length}); use --jsonl or --csv for many`);
  // one report: read by the report reader (UTF-8, not binary, at most 1 MB); a JSONL file holds many, each checked
  const text = values.jsonl ? readText(file) : readReport(file);

  if (values.jsonl) {
    const name = file === '-' ? '<stdin>' : file;
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let report: unknown;
      try {
        report = JSON.parse(line);
      } catch {
        throw new UserError(`${name}: line ${i + 1}: not valid JSON (expected one JSON string per line)`);
      }
      if (typeof report !== 'string') throw new UserError(`${name}: line ${i + 1}: expected a JSON string, got ${report === null ? 'null' : typeof report}`);
      process.stdout.write(JSON.stringify(toJson(structureReport(checkReportText(report, `${name}: line ${i + 1}`)), withCharClasses)) + '\n');
    });
    return 0;
  }

  const r = structureReport(text);
  if (values.json) console.log(JSON.stringify(toJson(r, withCharClasses)));
  else printHuman(r);
  return 0;
}
