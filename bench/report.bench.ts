import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../src/common/index.ts';
import { readCsvColumn, recognizePhrases, structureReport } from '../src/report/index.ts';
import { REPORTS_CSV } from '../test/helpers/shared.ts';

/**
 * Report structuring throughput on all 1,564 CT-RATE findings texts (target: the whole file in
 * under 5 s on one core), and our token-trie phrase recognition against the obvious alternative,
 * one case-insensitive regular expression alternating every lexicon term (longest first), on the
 * same texts in the same run.
 */

function lexiconTerms(): string[] {
  const dir = join(projectRoot, 'data', 'lexicon');
  const terms: string[] = [];
  const walk = (v: unknown, key = ''): void => {
    if (typeof v === 'string') { if (key !== '_doc' && key !== 'regex' && key !== 'flags') terms.push(v); return; }
    if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (k !== 'patterns' && k !== '_doc') walk(x, k);
  };
  for (const f of ['anomaly', 'anatomy', 'location', 'modifiers', 'certainty']) walk(JSON.parse(readFileSync(join(dir, `${f}.json`), 'utf8')));
  return [...new Set(terms.map((t) => t.toLowerCase()))].filter((t) => /[a-z]/.test(t));
}

function cpuMs(c: NodeJS.CpuUsage): number {
  return (c.user + c.system) / 1000;
}

export async function run({ json }: { json: boolean }): Promise<Record<string, unknown>> {
  const { texts } = readCsvColumn(REPORTS_CSV(), 'Findings_EN');
  const chars = texts.reduce((s, t) => s + t.length, 0);
  structureReport(texts[0]!); // load lexicons, warm the JIT
  for (const t of texts.slice(0, 100)) structureReport(t);

  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let anomalies = 0;
  for (const t of texts) anomalies += structureReport(t).anomalies.length;
  const wallMs = performance.now() - t0;
  const cpu = cpuMs(process.cpuUsage(c0));

  // Per report (issue 26: a typical report <= 50 ms): each report timed alone, CPU time of this
  // process, so that the other jobs on a shared machine do not count.
  const per: number[] = [];
  for (const t of texts) {
    const c = process.cpuUsage();
    structureReport(t);
    per.push(cpuMs(process.cpuUsage(c)));
  }
  per.sort((a, b) => a - b);
  const q = (f: number): number => per[Math.min(per.length - 1, Math.floor(f * per.length))]!;
  // One long report (the CT-RATE texts one after another up to 200 KB): the cost must stay linear.
  let long = '';
  for (let i = 0; long.length < 200_000; i = (i + 1) % texts.length) long += `${texts[i]!}\n`;
  const cl = process.cpuUsage();
  const longAnomalies = structureReport(long).anomalies.length;
  const longMs = cpuMs(process.cpuUsage(cl));

  // Phrase recognition alone, ours vs one big alternation regex, on the first 300 reports.
  const sample = texts.slice(0, 300);
  const terms = lexiconTerms().sort((a, b) => b.length - a.length);
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/[\s-]+/g, '[\\s-]+'));
  const big = new RegExp(`\\b(?:${escaped.join('|')})\\b`, 'gi');
  const time = (f: () => number): { ms: number; n: number } => {
    f();
    const s = process.cpuUsage();
    const n = f();
    return { ms: cpuMs(process.cpuUsage(s)), n };
  };
  const ours = time(() => sample.reduce((s, t) => s + recognizePhrases(t).phrases.length, 0));
  const regex = time(() => sample.reduce((s, t) => { let n = 0; big.lastIndex = 0; while (big.exec(t)) n++; return s + n; }, 0));

  const result = {
    data: 'CT-RATE validation_reports.csv, Findings_EN',
    reports: texts.length,
    characters: chars,
    anomalies,
    wall_s: +(wallMs / 1000).toFixed(3),
    cpu_s: +(cpu / 1000).toFixed(3),
    reports_per_s_cpu: Math.round(texts.length / (cpu / 1000)),
    reports_per_s_wall: Math.round(texts.length / (wallMs / 1000)),
    // the default structurer is the rules: no learned structurer exists yet (docs/report.md)
    default_structurer: 'rules',
    per_report_cpu_ms_median: +q(0.5).toFixed(2),
    per_report_cpu_ms_p95: +q(0.95).toFixed(2),
    per_report_cpu_ms_max: +per[per.length - 1]!.toFixed(2),
    long_report_chars: long.length,
    long_report_anomalies: longAnomalies,
    long_report_cpu_ms: +longMs.toFixed(0),
    long_over_sum_of_parts: +(longMs / (cpu * long.length / chars)).toFixed(2),
    phrase_sample_reports: sample.length,
    lexicon_terms: terms.length,
    phrases_trie_cpu_ms: +ours.ms.toFixed(1),
    phrases_regex_cpu_ms: +regex.ms.toFixed(1),
    regex_over_trie: +(regex.ms / ours.ms).toFixed(2),
    phrases_found_trie: ours.n,
    phrases_found_regex: regex.n,
  };
  if (!json) {
    console.log(`structured ${texts.length} reports (${(chars / 1e6).toFixed(2)} M chars, ${anomalies} anomalies) in ${result.cpu_s} s CPU / ${result.wall_s} s wall: ${result.reports_per_s_cpu} reports/s (CPU), ${result.reports_per_s_wall} reports/s (wall)`);
    console.log(`default structurer: ${result.default_structurer} (no learned structurer yet); per report CPU median ${result.per_report_cpu_ms_median} ms, p95 ${result.per_report_cpu_ms_p95} ms, max ${result.per_report_cpu_ms_max} ms`);
    console.log(`one ${(long.length / 1000).toFixed(0)} KB report: ${result.long_report_cpu_ms} ms CPU, ${longAnomalies} anomalies (${result.long_over_sum_of_parts}x the per-character cost of the whole file: 1 = linear)`);
    console.log(`phrase recognition on ${sample.length} reports: trie ${result.phrases_trie_cpu_ms} ms vs one ${terms.length}-term regex ${result.phrases_regex_cpu_ms} ms CPU (regex/trie = ${result.regex_over_trie}x)`);
  }
  return result;
}
