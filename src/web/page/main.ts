import { Niivue, NVImage } from '@niivue/niivue';

// The review page: the study's report with coloured phrases, its anomalies, and niivue showing the
// CT with the selected anomaly's map and box. Everything it shows comes from the server's API.

type Vec3 = [number, number, number];
interface Span { start: number; end: number; text: string; class: string }
interface Review { decision: 'accepted' | 'rejected' | 'redrawn'; threshold?: number; voxelBox?: { min: Vec3; max: Vec3 } }
interface Anomaly {
  id: string; organ: string; type: string; certainty: string; spans: Span[]; phrase: string;
  // a negated finding comes without a map (mapUrl null) and without the map's numbers
  peak?: number; volumeMl?: number; voxels?: number; mapUrl: string | null;
  box: { voxel: { min: Vec3; max: Vec3 }; world: [Vec3, Vec3] } | null;
  focusVoxel?: Vec3; focusWorld?: Vec3; bestSlice?: { axial: number; coronal: number; sagittal: number };
  review: Review | null;
}
interface Study { id: string; report: string; ct: string; grounded: boolean; threshold: number; model: string | null; anomalies: Anomaly[] }

const PHRASE_CLASSES = ['anomaly', 'anatomy', 'location', 'size', 'property', 'density', 'certainty', 'change', 'diagnosis'];

const $ = <T extends HTMLElement>(sel: string): T => document.querySelector(sel) as T;
const statusEl = $('#status');
const setStatus = (s: string): void => { statusEl.textContent = s; };

// this server start's token, put in the page by the server: every API call carries it (a page of
// another origin cannot read it, so it cannot make these calls)
const TOKEN = document.querySelector<HTMLMetaElement>('meta[name="ctground-token"]')?.content ?? '';

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { 'x-ctground-token': TOKEN, ...(init.headers as Record<string, string> | undefined) };
  // the server takes state-changing requests as JSON only
  if (init.method && init.method !== 'GET') headers['content-type'] = 'application/json';
  const r = await fetch(path, { ...init, headers, body: init.body ?? (init.method && init.method !== 'GET' ? '{}' : undefined) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${r.status}`);
  return body as T;
}

// radiological convention (patient right on the screen's left), as in overview.png and at the reading station
const nv = new Niivue({ backColor: [0.09, 0.1, 0.11, 1], crosshairColor: [0.2, 0.8, 1, 1], show3Dcrosshair: true, isColorbar: false, isRadiologicalConvention: true });
let study: Study | null = null;
let selected: Anomaly | null = null;
let mapVol: NVImage | null = null;
let boxVol: NVImage | null = null;
let drawing = false;
let threshold = 0.5;

const state = {
  ready: false,
  selected: (): string | null => selected?.id ?? null,
  crosshairVox: (): number[] => Array.from(nv.frac2vox(nv.scene.crosshairPos)),
  overlays: (): number => nv.volumes.length - 1,
  nv,
};
(window as unknown as { ctground: typeof state }).ctground = state;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Report text with each phrase wrapped in a span of its class; overlapping phrases are split at every boundary. */
function renderReport(s: Study): void {
  const n = s.report.length;
  const cls: (string | null)[] = new Array(n).fill(null);
  const owners: Set<string>[] = Array.from({ length: n }, () => new Set());
  for (const a of s.anomalies) for (const sp of a.spans) for (let c = Math.max(0, sp.start); c < Math.min(n, sp.end); c++) { cls[c] ??= sp.class; owners[c]!.add(a.id); }
  let html = '';
  for (let c = 0; c < n;) {
    let e = c + 1;
    const key = (t: number): string => `${cls[t]}|${[...owners[t]!].join(' ')}`;
    while (e < n && key(e) === key(c)) e++;
    const text = escapeHtml(s.report.slice(c, e));
    html += cls[c] ? `<span class="ph ph-${cls[c]}" data-anomalies="${[...owners[c]!].join(' ')}" title="${cls[c]}">${text}</span>` : text;
    c = e;
  }
  $('#report').innerHTML = html;
  $('#legend').innerHTML = PHRASE_CLASSES.map((c) => `<span class="ph-${c}">${c}</span>`).join('');
}

function renderAnomalies(s: Study): void {
  const ul = $('#anomalies');
  if (!s.anomalies.length) { ul.innerHTML = `<li class="meta">${s.grounded ? 'the report describes no anomaly' : 'not grounded yet'}</li>`; return; }
  ul.innerHTML = s.anomalies.map((a) => `
    <li data-id="${escapeHtml(a.id)}" class="${selected?.id === a.id ? 'sel' : ''}">
      <div><b>${escapeHtml(a.organ)}</b> · ${escapeHtml(a.type.replace(/_/g, ' '))}${a.review ? `<span class="badge ${a.review.decision}">${a.review.decision}</span>` : ''}</div>
      <div class="meta">${escapeHtml(a.certainty)} · ${a.mapUrl === null ? 'negated: no location' : `${a.box ? `${(a.volumeMl ?? 0).toFixed(1)} ml` : 'below threshold'} · peak ${(a.peak ?? 0).toFixed(2)}`}</div>
      <div class="meta">${escapeHtml(a.phrase)}</div>
      ${a.mapUrl === null ? '' : '<div class="acts"><button data-act="accept">accept</button><button data-act="reject">reject</button><button data-act="redraw">redraw box</button></div>'}
    </li>`).join('');
}

let renderOnly = false;

/**
 * A box's surface, one voxel thick, on the map's grid: a rectangle in every slice through it. In the
 * 3D-only view just its 12 edges, so the box does not hide the map inside it.
 */
function boxShell(like: NVImage, box: { min: Vec3; max: Vec3 }): NVImage {
  const v = like.clone();
  const dims = v.hdr!.dims;
  const [nx, ny] = [dims[1]!, dims[2]!];
  const img = new Float32Array(v.img!.length);
  const { min, max } = box;
  for (let k = min[2]; k <= max[2]; k++) for (let j = min[1]; j <= max[1]; j++) for (let i = min[0]; i <= max[0]; i++) {
    const edges = Number(i === min[0] || i === max[0]) + Number(j === min[1] || j === max[1]) + Number(k === min[2] || k === max[2]);
    if (edges >= (renderOnly ? 2 : 1)) img[i + nx * (j + ny * k)] = 1;
  }
  v.img = img;
  v.colormap = 'warm';
  v.opacity = 0.9;
  v.cal_min = 0.5;
  v.cal_max = 1;
  v.name = 'box';
  return v;
}

function currentBox(a: Anomaly): { min: Vec3; max: Vec3 } | null {
  return a.review?.voxelBox ?? a.box?.voxel ?? null;
}

/** The box on screen: the reviewed one if there is one, else the map's at the slider's threshold (what "accept" would save). */
function shownBox(a: Anomaly, map: NVImage): { min: Vec3; max: Vec3 } | null {
  return a.review?.voxelBox ?? boxAt(map, threshold);
}

async function showAnomaly(a: Anomaly): Promise<void> {
  selected = a;
  renderAnomalies(study!);
  document.querySelectorAll('#report .ph').forEach((el) => el.classList.toggle('sel', (el as HTMLElement).dataset.anomalies!.split(' ').includes(a.id)));
  while (nv.volumes.length > 1) nv.removeVolumeByIndex(nv.volumes.length - 1);
  if (a.mapUrl === null || !a.focusWorld || !a.bestSlice) {
    mapVol = null; boxVol = null;
    nv.updateGLVolume();
    setStatus(`${a.id}: ${a.organ} ${a.type.replace(/_/g, ' ')} · negated in the report, no location`);
    return;
  }
  setStatus(`loading map of ${a.id}…`);
  mapVol = await NVImage.loadFromUrl({ url: a.mapUrl, colormap: 'red', opacity: 0.6, cal_min: threshold, cal_max: 1 });
  nv.addVolume(mapVol);
  const box = shownBox(a, mapVol);
  boxVol = box ? boxShell(mapVol, box) : null;
  if (boxVol) nv.addVolume(boxVol);
  nv.scene.crosshairPos = nv.mm2frac(a.focusWorld);
  nv.updateGLVolume();
  setStatus(`${a.id}: ${a.organ} ${a.type.replace(/_/g, ' ')} · best axial slice ${a.bestSlice.axial}`);
}

async function loadStudy(id: string): Promise<void> {
  selected = null;
  setStatus(`opening ${id}…`);
  study = await api<Study>(`/api/studies/${encodeURIComponent(id)}`);
  if (!study.grounded) {
    setStatus(`grounding ${id}… (first open only)`);
    study = await api<Study>(`/api/studies/${encodeURIComponent(id)}/ground`, { method: 'POST' });
  }
  threshold = study.threshold;
  ($('#threshold') as HTMLInputElement).value = String(threshold);
  $('#threshold-value').textContent = threshold.toFixed(2);
  ($('#export') as HTMLAnchorElement).href = `/api/studies/${encodeURIComponent(id)}/export?token=${encodeURIComponent(TOKEN)}`;
  renderReport(study);
  renderAnomalies(study);
  const [lo, hi] = windowValues();
  await nv.loadVolumes([{ url: study.ct, colormap: 'gray', cal_min: lo, cal_max: hi }]);
  setStatus(`${study.anomalies.length} anomaly(ies) · model ${study.model ?? '—'}`);
}

function windowValues(): [number, number] {
  const [level, width] = ($('#window') as HTMLSelectElement).value.split(',').map(Number) as [number, number];
  return [level - width / 2, level + width / 2];
}

async function decide(a: Anomaly, act: 'accept' | 'reject' | 'redraw', box?: { min: Vec3; max: Vec3 }): Promise<void> {
  setStatus(`saving ${act} of ${a.id}…`);
  const r = await api<{ anomaly: { review: Review } }>(`/api/studies/${encodeURIComponent(study!.id)}/review`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ anomaly: a.id, decision: act, threshold, ...(box ? { box } : {}) }),
  });
  a.review = r.anomaly.review;
  renderAnomalies(study!);
  if (selected?.id === a.id) await showAnomaly(a);
  setStatus(`${a.id} ${a.review.decision} (saved in manifest.jsonl)`);
}

$('#anomalies').addEventListener('click', (ev) => {
  const li = (ev.target as HTMLElement).closest('li[data-id]') as HTMLElement | null;
  if (!li || !study) return;
  const a = study.anomalies.find((x) => x.id === li.dataset.id)!;
  const act = (ev.target as HTMLElement).dataset.act as 'accept' | 'reject' | 'redraw' | undefined;
  const run = async (): Promise<void> => {
    if (act === 'accept' || act === 'reject') return decide(a, act);
    if (selected?.id !== a.id) await showAnomaly(a);
    if (act === 'redraw') {
      drawing = true;
      nv.opts.dragMode = nv.dragModes.callbackOnly;
      $('#drawhint').textContent = 'drag a rectangle on a slice to redraw the box';
    }
  };
  run().catch((e: Error) => setStatus(`error: ${e.message}`));
});

nv.onDragRelease = (p) => {
  if (!drawing || !selected) return;
  drawing = false;
  nv.opts.dragMode = nv.dragModes.contrast;
  $('#drawhint').textContent = '';
  const old = (mapVol && shownBox(selected, mapVol)) || currentBox(selected) || { min: [0, 0, 0] as Vec3, max: [0, 0, 0] as Vec3 };
  // the two in-plane axes come from the drag; the through-plane extent is kept from the old box
  const s = Array.from(p.voxStart).map(Math.round), e = Array.from(p.voxEnd).map(Math.round);
  const min = [0, 1, 2].map((ax) => (s[ax] === e[ax] ? old.min[ax]! : Math.min(s[ax]!, e[ax]!))) as Vec3;
  const max = [0, 1, 2].map((ax) => (s[ax] === e[ax] ? old.max[ax]! : Math.max(s[ax]!, e[ax]!))) as Vec3;
  decide(selected, 'redraw', { min, max }).catch((err: Error) => setStatus(`error: ${err.message}`));
};

/** Voxel box of the map at the threshold, computed here so the box shown is the one "accept" would save. */
function boxAt(v: NVImage, t: number): { min: Vec3; max: Vec3 } | null {
  const [nx, ny] = [v.hdr!.dims[1]!, v.hdr!.dims[2]!];
  const img = v.img!;
  const min: Vec3 = [Infinity, Infinity, Infinity], max: Vec3 = [-1, -1, -1];
  for (let o = 0; o < img.length; o++) {
    if (!(img[o]! >= t)) continue;
    const i = o % nx, j = Math.floor(o / nx) % ny, k = Math.floor(o / (nx * ny));
    if (i < min[0]) min[0] = i; if (i > max[0]) max[0] = i;
    if (j < min[1]) min[1] = j; if (j > max[1]) max[1] = j;
    if (k < min[2]) min[2] = k; if (k > max[2]) max[2] = k;
  }
  return max[0] < 0 ? null : { min, max };
}

let boxTimer: ReturnType<typeof setTimeout> | undefined;
$('#threshold').addEventListener('input', () => {
  threshold = Number(($('#threshold') as HTMLInputElement).value);
  $('#threshold-value').textContent = threshold.toFixed(2);
  if (!mapVol) return;
  mapVol.cal_min = threshold;
  nv.updateGLVolume();
  clearTimeout(boxTimer);
  boxTimer = setTimeout(() => {
    // a box the reader drew stays; a computed one follows the threshold
    if (!mapVol || !selected || selected.review?.voxelBox) return;
    if (boxVol) nv.removeVolume(boxVol);
    const b = shownBox(selected, mapVol);
    boxVol = b ? boxShell(mapVol, b) : null;
    if (boxVol) nv.addVolume(boxVol);
    nv.updateGLVolume();
  }, 150);
});

$('#window').addEventListener('change', () => {
  const [lo, hi] = windowValues();
  if (nv.volumes[0]) { nv.volumes[0].cal_min = lo; nv.volumes[0].cal_max = hi; nv.updateGLVolume(); }
});

document.querySelectorAll<HTMLButtonElement>('#toolbar [data-view]').forEach((b) => b.addEventListener('click', () => {
  const v = b.dataset.view!;
  const types: Record<string, number> = { axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal, multi: nv.sliceTypeMultiplanar, render: nv.sliceTypeRender };
  nv.setSliceType(types[v]!);
  document.querySelectorAll('#toolbar [data-view]').forEach((x) => x.classList.toggle('on', x === b));
  const wasRender = renderOnly;
  renderOnly = v === 'render';
  if (wasRender !== renderOnly && mapVol && boxVol) {
    const box = shownBox(selected!, mapVol);
    nv.removeVolume(boxVol);
    boxVol = box ? boxShell(mapVol, box) : null;
    if (boxVol) nv.addVolume(boxVol);
    nv.updateGLVolume();
  }
}));

$('#ground').addEventListener('click', () => {
  if (!study) return;
  setStatus(`grounding ${study.id}…`);
  api<Study>(`/api/studies/${encodeURIComponent(study.id)}/ground?force=1`, { method: 'POST' })
    .then(() => loadStudy(study!.id)).catch((e: Error) => setStatus(`error: ${e.message}`));
});

$('#study').addEventListener('change', () => {
  loadStudy(($('#study') as HTMLSelectElement).value).catch((e: Error) => setStatus(`error: ${e.message}`));
});

$('#upload').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const ct = ($('#upload-ct') as HTMLInputElement).files?.[0], rep = ($('#upload-report') as HTMLInputElement).files?.[0];
  if (!ct || !rep) return;
  (async () => {
    setStatus('uploading…');
    // the report first, for an upload slot; then the CT file itself, which the browser streams and
    // the server writes to disk as it arrives (no base64 copy of a CT in memory on either side)
    const { put } = await api<{ put: string }>('/api/upload', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: ct.name, report: await rep.text() }),
    });
    const r = await fetch(put, { method: 'PUT', headers: { 'x-ctground-token': TOKEN, 'content-type': 'application/octet-stream' }, body: ct });
    const answer = (await r.json().catch(() => ({}))) as { id?: string; error?: string };
    if (!r.ok || !answer.id) throw new Error(answer.error ?? `HTTP ${r.status}`);
    const id = answer.id;
    await listStudies(id);
  })().catch((e: Error) => setStatus(`error: ${e.message}`));
});

async function listStudies(pick?: string): Promise<void> {
  const { studies } = await api<{ studies: { id: string; reviewed: number }[] }>('/api/studies');
  const sel = $('#study') as HTMLSelectElement;
  sel.innerHTML = studies.map((s) => `<option value="${escapeHtml(s.id)}">${escapeHtml(s.id)}${s.reviewed ? ` (${s.reviewed} reviewed)` : ''}</option>`).join('');
  const want = pick ?? new URLSearchParams(location.search).get('study') ?? studies[0]?.id;
  if (want) { sel.value = want; await loadStudy(want); }
  else setStatus('no studies in this data folder yet: upload one');
}

(async () => {
  await nv.attachToCanvas($('#gl') as HTMLCanvasElement);
  nv.setSliceType(nv.sliceTypeMultiplanar);
  document.querySelector('#toolbar [data-view="multi"]')!.classList.add('on');
  await listStudies();
  state.ready = true;
})().catch((e: Error) => setStatus(`error: ${e.message}`));
