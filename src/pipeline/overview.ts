import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { projectRoot } from '../common/index.ts';
import { boxedAt, type BoxedVolume, type Volume } from '../volume/index.ts';
import type { MapSummary } from './findings.ts';

interface Font { width: number; height: number; glyphs: Record<string, number[]> }
let font: Font | undefined;
function loadFont(): Font {
  font ??= JSON.parse(readFileSync(join(projectRoot, 'data', 'app', 'font5x7.json'), 'utf8')) as Font;
  return font;
}

type RGB = [number, number, number];

/** An RGBA canvas with the few drawing operations the overview needs. */
class Canvas {
  readonly data: Buffer;
  constructor(readonly width: number, readonly height: number, bg: RGB) {
    this.data = Buffer.alloc(width * height * 4);
    for (let p = 0; p < width * height; p++) this.data.set([bg[0], bg[1], bg[2], 255], p * 4);
  }
  blend(x: number, y: number, c: RGB, alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 4;
    for (let ch = 0; ch < 3; ch++) this.data[o + ch] = Math.round(this.data[o + ch]! * (1 - alpha) + c[ch]! * alpha);
  }
  rect(x0: number, y0: number, x1: number, y1: number, c: RGB): void {
    for (let x = x0; x <= x1; x++) { this.blend(x, y0, c, 1); this.blend(x, y1, c, 1); }
    for (let y = y0; y <= y1; y++) { this.blend(x0, y, c, 1); this.blend(x1, y, c, 1); }
  }
  /** Draws text at 2× scale; returns the x after the last glyph. */
  text(x: number, y: number, s: string, c: RGB, scale = 2): number {
    const f = loadFont();
    for (const ch of s) {
      const g = f.glyphs[ch.toUpperCase()] ?? f.glyphs['?']!;
      for (let row = 0; row < f.height; row++) {
        for (let col = 0; col < f.width; col++) {
          if (!((g[row]! >> (f.width - 1 - col)) & 1)) continue;
          for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) this.blend(x + col * scale + dx, y + row * scale + dy, c, 1);
        }
      }
      x += (f.width + 1) * scale;
    }
    return x;
  }
}

/** Greedy word wrap to at most `cols` characters a line. */
export function wrapText(s: string, cols: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of s.split(/\s+/).filter(Boolean)) {
    if (!line) line = word;
    else if (line.length + 1 + word.length <= cols) line += ' ' + word;
    else { lines.push(line); line = word; }
    while (line.length > cols) { lines.push(line.slice(0, cols)); line = line.slice(cols); }
  }
  if (line) lines.push(line);
  return lines;
}

export interface OverviewItem {
  title: string;
  caption: string;
  map: BoxedVolume;
  summary: MapSummary;
}

const TILE = 256;
const CAPTION_LINES = 4;
const LINE_H = 16;
const CAPTION_COLS = Math.floor((TILE - 8) / 12);

/**
 * One tile per finding: the axial slice that carries most of its map, in radiological display
 * (patient right on the left, anterior up, square millimetres), soft-tissue window, the map as a
 * red overlay, its box in yellow, and its phrases underneath.
 */
export function renderOverview(ct: Volume, items: OverviewItem[], opts: { window?: [number, number]; negated?: string[] } = {}): Buffer {
  const [lo, hi] = opts.window ?? [-160, 240];
  const perRow = Math.max(1, Math.min(3, items.length));
  const rows = Math.max(1, Math.ceil(items.length / perRow));
  const tileH = TILE + 8 + LINE_H * (CAPTION_LINES + 1);
  const width = perRow * TILE + (perRow + 1) * 4;
  // negated findings are listed under the tiles as text: what the report rules out, with no place to show
  const cols = Math.floor((width - 16) / 12);
  const negated = opts.negated?.length ? ['negated (no location):', ...opts.negated.flatMap((s) => wrapText(s, cols))] : [];
  const tilesH = rows * tileH + (rows + 1) * 4;
  const canvas = new Canvas(width, tilesH + (negated.length ? negated.length * LINE_H + 8 : 0), [24, 24, 24]);
  if (items.length === 0) canvas.text(8, 8, 'no findings', [230, 230, 230]);
  negated.forEach((line, n) => canvas.text(8, tilesH + 4 + n * LINE_H, line, n === 0 ? [200, 200, 200] : [160, 200, 255]));
  items.forEach((item, n) => {
    const ox = 4 + (n % perRow) * (TILE + 4), oy = 4 + Math.floor(n / perRow) * (tileH + 4);
    drawTile(canvas, ct, item, ox, oy, lo, hi);
  });
  const png = new PNG({ width: canvas.width, height: canvas.height });
  canvas.data.copy(png.data);
  return PNG.sync.write(png);
}

function drawTile(canvas: Canvas, ct: Volume, item: OverviewItem, ox: number, oy: number, lo: number, hi: number): void {
  const { summary, map } = item;
  const ax = summary.axisOfWorld;
  const [nx, ny] = [ct.size[ax.x], ct.size[ax.y]];
  const [sx, sy] = [ct.spacing[ax.x], ct.spacing[ax.y]];
  const k = summary.bestSlice.axial;
  const mm = Math.max(nx * sx, ny * sy);
  const pxMm = mm / TILE;
  // radiological convention: image columns run toward patient left (−x), rows toward posterior (−y)
  const flipCol = ct.direction[ax.x]! > 0;
  const flipRow = ct.direction[3 + ax.y]! > 0;
  const strides = [1, ct.size[0], ct.size[0] * ct.size[1]];
  const colToIdx = (c: number): number => { const t = Math.floor((c + 0.5) * pxMm / sx); return flipCol ? nx - 1 - t : t; };
  const rowToIdx = (r: number): number => { const t = Math.floor((r + 0.5) * pxMm / sy); return flipRow ? ny - 1 - t : t; };
  // the voxel index of the pixel being drawn, in the grid's own axis order
  const at = [0, 0, 0];
  at[ax.z] = k;
  for (let r = 0; r < TILE; r++) {
    const j = rowToIdx(r);
    if (j < 0 || j >= ny) continue;
    at[ax.y] = j;
    for (let c = 0; c < TILE; c++) {
      const i = colToIdx(c);
      if (i < 0 || i >= nx) continue;
      at[ax.x] = i;
      const v = i * strides[ax.x]! + j * strides[ax.y]! + k * strides[ax.z]!;
      const g = Math.round(255 * Math.min(1, Math.max(0, (ct.data[v]! - lo) / (hi - lo))));
      canvas.blend(ox + c, oy + r, [g, g, g], 1);
      const p = boxedAt(map, at[0]!, at[1]!, at[2]!);
      if (p > 0.05) canvas.blend(ox + c, oy + r, [255, 40, 40], Math.min(0.75, p * 0.75));
    }
  }
  const box = summary.box;
  if (box && box.voxel.min[ax.z] <= k && k <= box.voxel.max[ax.z]) {
    // voxel box edges → pixel edges (inverse of colToIdx / rowToIdx)
    const toCol = (i: number): number => ((flipCol ? nx - 1 - i : i) * sx) / pxMm;
    const toRow = (j: number): number => ((flipRow ? ny - 1 - j : j) * sy) / pxMm;
    const c0 = toCol(box.voxel.min[ax.x]), c1 = toCol(box.voxel.max[ax.x]);
    const r0 = toRow(box.voxel.min[ax.y]), r1 = toRow(box.voxel.max[ax.y]);
    const wpx = sx / pxMm, hpx = sy / pxMm;
    canvas.rect(ox + Math.floor(Math.min(c0, c1)), oy + Math.floor(Math.min(r0, r1)), ox + Math.ceil(Math.max(c0, c1) + wpx) - 1, oy + Math.ceil(Math.max(r0, r1) + hpx) - 1, [255, 220, 0]);
  }
  canvas.text(ox + 4, oy + 4, 'R', [120, 200, 255]);
  canvas.text(ox + TILE - 14, oy + 4, 'L', [120, 200, 255]);
  let y = oy + TILE + 6 - LINE_H;
  const title = wrapText(item.title, CAPTION_COLS).slice(0, 2);
  for (const line of title) canvas.text(ox + 2, (y += LINE_H), line, [255, 220, 0]);
  const caption = wrapText(item.caption, CAPTION_COLS);
  const room = CAPTION_LINES + 1 - title.length;
  caption.slice(0, room).forEach((line, n) => {
    const last = n === room - 1 && caption.length > room;
    canvas.text(ox + 2, (y += LINE_H), last ? line.slice(0, CAPTION_COLS - 1) + '.' : line, [230, 230, 230]);
  });
}
