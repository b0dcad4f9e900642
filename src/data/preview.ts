import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { fileError, projectRoot, writeFileAtomic } from '../common/index.ts';
import { readVolume, type Volume } from '../volume/index.ts';
import type { ManifestStudy } from './dataset.ts';

/** An RGB image being composed for a preview PNG. */
export interface Canvas { width: number; height: number; rgb: Uint8Array }

export function newCanvas(width: number, height: number): Canvas {
  return { width, height, rgb: new Uint8Array(width * height * 3) };
}

export function encodePng(c: Canvas): Buffer {
  const png = new PNG({ width: c.width, height: c.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(c.rgb);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/** Which index axis runs along world x, y and z, and in which direction (axis-aligned grids). */
function axisOf(v: Volume, world: number): { axis: number; sign: number } {
  let best = 0, bv = -1;
  for (let c = 0; c < 3; c++) { const m = Math.abs(v.direction[world * 3 + c]!); if (m > bv) { bv = m; best = c; } }
  return { axis: best, sign: Math.sign(v.direction[world * 3 + best]!) };
}

/**
 * Draws the axial slice at index `k` of the z-like axis in radiological view (patient right on the
 * image left, anterior up), windowed, with optional outlines, scaled by `zoom`.
 */
export function drawAxial(
  canvas: Canvas, x0: number, y0: number, v: Volume, kz: number, window: [number, number], zoom: number,
  outlines: { mask: ArrayLike<number>; rgb: [number, number, number] }[] = [],
): void {
  const ax = axisOf(v, 0), ay = axisOf(v, 1), az = axisOf(v, 2);
  const n = v.size;
  const W = n[ax.axis]!, H = n[ay.axis]!;
  const idx = (col: number, row: number): number => {
    const ijk = [0, 0, 0];
    // RAS: x grows to the patient's right, shown on the image left → column 0 = largest x.
    ijk[ax.axis] = ax.sign > 0 ? W - 1 - col : col;
    ijk[ay.axis] = ay.sign > 0 ? H - 1 - row : row;
    ijk[az.axis] = kz;
    return ijk[0]! + n[0] * (ijk[1]! + n[1] * ijk[2]!);
  };
  const [lo, hi] = window;
  for (let r = 0; r < H * zoom; r++) for (let c = 0; c < W * zoom; c++) {
    const X = x0 + c, Y = y0 + r;
    if (X >= canvas.width || Y >= canvas.height) continue;
    const p = idx(Math.floor(c / zoom), Math.floor(r / zoom));
    const g = Math.max(0, Math.min(255, Math.round(((v.data[p]! - lo) / (hi - lo)) * 255)));
    const o = (Y * canvas.width + X) * 3;
    canvas.rgb[o] = g; canvas.rgb[o + 1] = g; canvas.rgb[o + 2] = g;
  }
  // Outlines go on the pixels just outside the mask, so a small lesion stays visible inside.
  for (const { mask, rgb } of outlines) {
    const inside = (c: number, r: number): boolean => c >= 0 && r >= 0 && c < W && r < H && Boolean(mask[idx(c, r)]);
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
      if (inside(c, r) || !(inside(c - 1, r) || inside(c + 1, r) || inside(c, r - 1) || inside(c, r + 1))) continue;
      for (let dy = 0; dy < zoom; dy++) for (let dx = 0; dx < zoom; dx++) {
        const X = x0 + c * zoom + dx, Y = y0 + r * zoom + dy;
        if (X >= canvas.width || Y >= canvas.height) continue;
        const o = (Y * canvas.width + X) * 3;
        canvas.rgb[o] = rgb[0]; canvas.rgb[o + 1] = rgb[1]; canvas.rgb[o + 2] = rgb[2];
      }
    }
  }
}

/** The index along the z-like axis of a voxel offset, and the size of the axial slice. */
export function zIndexOf(v: Volume, offset: number): number {
  const az = axisOf(v, 2).axis;
  const i = offset % v.size[0], j = Math.floor(offset / v.size[0]) % v.size[1], k = Math.floor(offset / (v.size[0] * v.size[1]));
  return [i, j, k][az]!;
}

export function axialSize(v: Volume, zoom: number): [number, number] {
  return [v.size[axisOf(v, 0).axis]! * zoom, v.size[axisOf(v, 1).axis]! * zoom];
}

let font: Record<string, string[]> | undefined;
function glyphs(): Record<string, string[]> {
  font ??= (JSON.parse(readFileSync(join(projectRoot, 'data', 'synth', 'font5x7.json'), 'utf8')) as { glyphs: Record<string, string[]> }).glyphs;
  return font;
}

/** Draws text in the 5×7 font at (x, y), `scale` pixels per font pixel; returns the width used. */
export function drawText(c: Canvas, x: number, y: number, text: string, rgb: [number, number, number], scale = 1): number {
  const g = glyphs();
  let cx = x;
  for (const ch of text.toUpperCase()) {
    const rows = g[ch] ?? g['?']!;
    for (let r = 0; r < 7; r++) for (let col = 0; col < 5; col++) {
      if (rows[r]![col] !== '1') continue;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
        const X = cx + col * scale + dx, Y = y + r * scale + dy;
        if (X < 0 || Y < 0 || X >= c.width || Y >= c.height) continue;
        const o = (Y * c.width + X) * 3;
        c.rgb[o] = rgb[0]; c.rgb[o + 1] = rgb[1]; c.rgb[o + 2] = rgb[2];
      }
    }
    cx += 6 * scale;
  }
  return cx - x;
}

/** Splits text into lines of at most `width` characters at spaces. */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/)) {
    if (line && line.length + 1 + w.length > width) { out.push(line); line = w; } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
}

function windowFor(target: string | undefined, organ: string): [number, number] {
  if (target?.startsWith('lung_') || organ === 'lung') return [-1100, 250];
  if (target === 'ribs' || target === 'spine' || target === 'pelvis') return [-300, 1200];
  return [-160, 240];
}

/**
 * One PNG per study of a dataset folder: for each anomaly with a mask, the axial slice through most
 * of the lesion with its outline, captioned with the anomaly's report phrases.
 */
export async function writePreviews(dataDir: string, pngDir: string, limit: number): Promise<number> {
  const manifest = join(dataDir, 'manifest.jsonl');
  if (!existsSync(manifest)) throw fileError(manifest, 'not found (run ctground synth first)');
  const studies = readFileSync(manifest, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ManifestStudy);
  mkdirSync(pngDir, { recursive: true });
  let written = 0;
  for (const s of studies.slice(0, limit)) {
    const ct = await readVolume(join(dataDir, s.ct));
    const withMask = s.anomalies.filter((a) => a.mask).slice(0, 4);
    if (!withMask.length) continue;
    const zoom = Math.max(1, Math.floor(384 / Math.max(ct.size[0], ct.size[1])));
    const [pw, ph] = axialSize(ct, zoom);
    const panelW = Math.max(pw, 300), capLines = 7, capH = capLines * 10 + 8;
    const canvas = newCanvas(panelW * withMask.length, ph + capH);
    for (let n = 0; n < withMask.length; n++) {
      const a = withMask[n]!;
      const mask = await readVolume(join(dataDir, a.mask!));
      // The slice holding most of the lesion.
      const area = new Map<number, number>();
      for (let p = 0; p < mask.data.length; p++) if (mask.data[p]) { const z = zIndexOf(mask, p); area.set(z, (area.get(z) ?? 0) + 1); }
      let kz = 0, best = -1;
      for (const [z, v] of area) if (v > best) { best = v; kz = z; }
      drawAxial(canvas, n * panelW, 0, ct, kz, windowFor(a.synth?.target, a.organ), zoom, [{ mask: mask.data, rgb: [255, 60, 40] }]);
      const phrase = a.spans.map((sp) => sp.text).join(' ');
      const lines = [`${a.id} ${a.organ} / ${a.type.replace(/_/g, " ")} (${a.certainty})`, ...wrap(phrase, Math.floor(panelW / 6) - 1)].slice(0, capLines);
      lines.forEach((l, i) => drawText(canvas, n * panelW + 4, ph + 4 + i * 10, l, i === 0 ? [255, 200, 80] : [230, 230, 230]));
    }
    writeFileAtomic(join(pngDir, `${s.id}.png`), encodePng(canvas));
    written++;
  }
  return written;
}
