/**
 * The loss curve as a standalone SVG: training loss (left axis) and validation score (right axis,
 * 0..1) against steps. Plain SVG so it renders on GitHub and in any browser, with no dependency.
 */
export function lossCurveSvg(log: readonly { step: number; loss: number; valDice?: number }[], title: string): string {
  const W = 640, H = 360, L = 56, R = 56, T = 36, Bm = 40;
  const pw = W - L - R, ph = H - T - Bm;
  const maxStep = Math.max(1, ...log.map((e) => e.step));
  const losses = log.map((e) => e.loss).filter(Number.isFinite);
  const maxLoss = Math.max(1e-6, ...losses);
  const x = (s: number) => L + (s / maxStep) * pw;
  const yl = (v: number) => T + ph - (v / maxLoss) * ph;
  const yd = (v: number) => T + ph - v * ph;
  const path = (pts: [number, number][]) => pts.map(([a, b], i) => `${i ? 'L' : 'M'}${a.toFixed(1)},${b.toFixed(1)}`).join(' ');
  const lossPts = log.filter((e) => Number.isFinite(e.loss)).map((e) => [x(e.step), yl(e.loss)] as [number, number]);
  const valPts = log.filter((e) => e.valDice !== undefined && Number.isFinite(e.valDice)).map((e) => [x(e.step), yd(e.valDice!)] as [number, number]);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="13">${esc(title)}</text>
<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>
${ticks.map((t) => `<text x="${L - 6}" y="${yl(t * maxLoss) + 4}" text-anchor="end" fill="#c33">${(t * maxLoss).toFixed(2)}</text><text x="${W - R + 6}" y="${yd(t) + 4}" fill="#36c">${t.toFixed(2)}</text>`).join('\n')}
${ticks.map((t) => `<text x="${x(t * maxStep)}" y="${H - Bm + 16}" text-anchor="middle">${Math.round(t * maxStep)}</text>`).join('\n')}
<text x="${L + pw / 2}" y="${H - 8}" text-anchor="middle">step</text>
<path d="${path(lossPts)}" fill="none" stroke="#c33" stroke-width="1.5"/>
<path d="${path(valPts)}" fill="none" stroke="#36c" stroke-width="1.5"/>
${valPts.map(([a, b]) => `<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="2.5" fill="#36c"/>`).join('')}
<text x="${L + 8}" y="${T + 14}" fill="#c33">training loss</text><text x="${L + 8}" y="${T + 28}" fill="#36c">validation score</text>
</svg>
`;
}
