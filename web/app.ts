// The page: pick a Go process (or the whole node), capture N seconds of CPU or off-CPU, draw the flame graph
// (d3-flame-graph) with search, zoom and label filters, show what the diagnosis found, download the pprof.
// Everything it shows from the agent is text from other processes (paths, labels, function names): it goes into
// the DOM as text, never as HTML.

import type { Finding } from '../src/diagnose/types';
import type { FlameModel, FrameKind } from '../src/profile/flame-model';
import type { CaptureInfo, CaptureList } from '../src/server/api-types';

/** The fields of GET /api/processes the page shows. */
interface ProcessRow {
  pid: number;
  exe: string;
  goVersion?: string;
  containerId?: string;
  pod?: string;
}

const el = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing from the page`);
  return e as T;
};

function make<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

const state = {
  processes: [] as ProcessRow[],
  /** The process to capture; undefined = the whole node. */
  pid: undefined as number | undefined,
  captures: [] as CaptureInfo[],
  /** The capture drawn, its model and the label filters applied to it ([key, value] pairs). */
  shown: undefined as CaptureInfo | undefined,
  model: undefined as FlameModel | undefined,
  filters: [] as Array<[string, string]>,
  chart: undefined as FlameChart | undefined,
  /** A capture this page started and waits for. */
  waitingFor: undefined as string | undefined,
};

async function api<T>(url: string, init?: RequestInit): Promise<T> {
  const r = await fetch(url, init);
  if (!r.ok) throw new Error((await r.text()).trim() || `${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

function showError(e: unknown): void {
  el('error').textContent = e instanceof Error ? e.message : String(e);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** A sample value in its unit: nanoseconds as ms or s, counts as they are. */
function formatValue(v: number, unit: string): string {
  if (unit !== 'nanoseconds') return `${v} ${unit}`;
  return v >= 1e9 ? `${(v / 1e9).toFixed(2)} s` : `${(v / 1e6).toFixed(1)} ms`;
}

// ---- processes -----------------------------------------------------------------------------------------------

async function loadProcesses(): Promise<void> {
  const r = await api<{ processes: ProcessRow[] }>('/api/processes');
  state.processes = r.processes;
  if (state.pid !== undefined && !r.processes.some((p) => p.pid === state.pid)) state.pid = undefined;
  renderProcesses();
}

function renderProcesses(): void {
  const body = el('processes').querySelector('tbody')!;
  body.replaceChildren();
  const row = (pid: number | undefined, cells: string[], title: string): void => {
    const tr = make('tr');
    tr.dataset['pid'] = pid === undefined ? 'node' : String(pid);
    const radio = make('input');
    radio.type = 'radio';
    radio.name = 'target';
    radio.checked = state.pid === pid;
    const td = make('td');
    td.append(radio);
    tr.append(td, ...cells.map((c, i) => make('td', c, i === 1 ? 'exe' : undefined)));
    tr.title = title;
    if (state.pid === pid) tr.classList.add('selected');
    tr.addEventListener('click', () => {
      state.pid = pid;
      renderProcesses();
    });
    body.append(tr);
  };
  row(undefined, ['', 'the whole node', '', `${state.processes.length} Go processes`], 'every process on this node');
  for (const p of state.processes) {
    const where = p.pod ?? (p.containerId ? p.containerId.slice(0, 12) : '');
    row(p.pid, [String(p.pid), basename(p.exe), p.goVersion ?? '', where], p.exe);
  }
  el('node-summary').textContent = `${state.processes.length} Go processes on this node`;
}

// ---- captures ------------------------------------------------------------------------------------------------

async function startCapture(ev: Event): Promise<void> {
  ev.preventDefault();
  showError('');
  const kind = el<HTMLSelectElement>('kind').value;
  const seconds = Number(el<HTMLInputElement>('seconds').value);
  const r = await api<{ capture: CaptureInfo }>('/api/captures', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind, seconds, pid: state.pid }),
  });
  state.waitingFor = r.capture.id;
  el<HTMLButtonElement>('capture').disabled = true;
  await pollCaptures();
}

let pollTimer: number | undefined;

async function pollCaptures(): Promise<void> {
  window.clearTimeout(pollTimer);
  try {
    const list = await api<CaptureList>('/api/captures');
    state.captures = list.captures;
    el<HTMLInputElement>('seconds').max = String(list.limits.maxSeconds);
    renderCaptures();
    const waited = state.captures.find((c) => c.id === state.waitingFor);
    renderProgress(waited);
    if (waited && waited.state !== 'running') {
      state.waitingFor = undefined;
      el<HTMLButtonElement>('capture').disabled = false;
      if (waited.state === 'failed') showError(`capture failed: ${waited.error ?? 'unknown error'}`);
      else await show(waited);
    } else if (!state.waitingFor && !state.shown) {
      const newest = state.captures.find((c) => c.state === 'done');
      if (newest) await show(newest);
    }
  } catch (e) {
    showError(e);
  }
  // Quicker while a capture of ours runs (its progress), slower otherwise (others' captures appear).
  pollTimer = window.setTimeout(() => void pollCaptures(), state.waitingFor ? 300 : 5000);
}

function renderProgress(c: CaptureInfo | undefined): void {
  const box = el('progress-box');
  box.hidden = c === undefined || c.state !== 'running';
  if (!c || c.state !== 'running') return;
  const done = (c.elapsedMs ?? 0) / 1000;
  el<HTMLProgressElement>('progress').value = Math.min(1, done / c.seconds);
  el('progress-text').textContent = `capturing ${done.toFixed(1)} / ${c.seconds} s, ${c.samples} samples`;
}

function targetOf(c: CaptureInfo): string {
  return c.pid === undefined ? 'node' : `${c.pid} ${c.exe ? basename(c.exe) : ''}`;
}

function renderCaptures(): void {
  const body = el('captures').querySelector('tbody')!;
  body.replaceChildren();
  for (const c of state.captures) {
    const tr = make('tr');
    tr.dataset['id'] = c.id;
    const status = c.state === 'done' ? formatBytes(c.bytes) : c.state;
    tr.append(
      make('td', new Date(c.startedAtMs).toLocaleTimeString()),
      make('td', targetOf(c)),
      make('td', c.kind === 'cpu' ? 'CPU' : 'off-CPU'),
      make('td', String(c.seconds)),
      make('td', String(c.samples)),
      make('td', status),
      make('td', c.findings && c.findings.length > 0 ? `⚑ ${c.findings.length}` : ''),
    );
    if (state.shown?.id === c.id) tr.classList.add('selected');
    if (c.state === 'done') tr.addEventListener('click', () => void show(c).catch(showError));
    else if (c.error) tr.title = c.error;
    body.append(tr);
  }
}

async function show(c: CaptureInfo): Promise<void> {
  state.model = await api<FlameModel>(`/api/captures/${c.id}/flame`);
  state.shown = c;
  state.filters = [];
  const a = el<HTMLAnchorElement>('download');
  a.href = `/api/captures/${c.id}`;
  a.download = `quietflame-${c.id}-${c.kind}.pb.gz`;
  a.hidden = false;
  renderCaptures();
  renderFilterKeys();
  renderFindings(c);
  draw();
}

// ---- flame graph ---------------------------------------------------------------------------------------------

/** Samples pass when, for every filtered key, one of their labels has one of that key's chosen values. */
function passes(sample: number[], byKey: Map<string, Set<string>>, labels: Array<[string, string]>): boolean {
  if (byKey.size === 0) return true;
  for (const [key, values] of byKey) {
    let ok = false;
    for (let i = 3; i < sample.length && !ok; i++) {
      const [k, v] = labels[sample[i]!]!;
      ok = k === key && values.has(v);
    }
    if (!ok) return false;
  }
  return true;
}

const KIND_SUFFIX: Record<FrameKind, string> = { user: '', inlined: ' (inlined)', kernel: ' [kernel]', native: ' [native]' };

/** The tree d3-flame-graph draws: each node's value includes its children's (selfValue off). */
function buildTree(m: FlameModel, filters: Array<[string, string]>): FlameNodeData {
  const byKey = new Map<string, Set<string>>();
  for (const [k, v] of filters) byKey.set(k, (byKey.get(k) ?? new Set()).add(v));
  const root: FlameNodeData = { name: 'all', value: 0, children: [], kind: 'root' };
  const index = new Map<FlameNodeData, Map<number, FlameNodeData>>();
  for (const s of m.samples) {
    if (!passes(s, byKey, m.labels)) continue;
    const value = s[2]!;
    root.value += value;
    let node = root;
    for (const f of m.stacks[s[0]!]!) {
      let kids = index.get(node);
      if (!kids) index.set(node, (kids = new Map()));
      let child = kids.get(f);
      if (!child) {
        const frame = m.frames[f]!;
        child = { name: frame.name, value: 0, children: [], kind: frame.kind };
        kids.set(f, child);
        node.children.push(child);
      }
      child.value += value;
      node = child;
    }
  }
  return root;
}

/** A stable small number from a name, so a function keeps its shade across redraws. */
function shade(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return (h >>> 0) % 1000 / 1000;
}

function colour(d: FlameNode, original: string): string {
  const s = shade(d.data.name);
  switch (d.data.kind) {
    case 'inlined':
      return `hsl(175, 45%, ${60 + s * 15}%)`;
    case 'kernel':
      return `hsl(210, 55%, ${65 + s * 15}%)`;
    case 'native':
      return `hsl(0, 50%, ${62 + s * 14}%)`;
    default:
      return original; // d3-flame-graph's warm hues for Go and other user code
  }
}

function draw(): void {
  const m = state.model;
  const box = el('flame');
  state.chart?.destroy();
  box.replaceChildren();
  if (!m || !state.shown) return;
  const tree = buildTree(m, state.filters);
  const c = state.shown;
  const what = c.kind === 'cpu' ? 'CPU' : 'off-CPU';
  const filtered = state.filters.length ? `, filtered: ${state.filters.map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
  el('flame-title').textContent = `${what} of ${targetOf(c)} — ${c.seconds} s, ${formatValue(tree.value, m.valueType.unit)}${filtered}`;
  tree.name = c.pid === undefined ? 'all processes' : `pid ${c.pid}`;
  if (tree.value === 0) {
    box.append(make('p', 'No samples (with these filters).', 'muted'));
    return;
  }
  const total = tree.value;
  const unit = m.valueType.unit;
  const chart = flamegraph
    .default()
    .width(Math.max(400, box.clientWidth))
    .cellHeight(18)
    .minFrameSize(1)
    .transitionDuration(300)
    .sort(true)
    .selfValue(false)
    .setLabelHandler((d) => `${d.data.name}${KIND_SUFFIX[d.data.kind as FrameKind] ?? ''} — ${((100 * d.value) / total).toFixed(2)}% (${formatValue(d.value, unit)})`)
    .setDetailsElement(el('details'))
    .setColorMapper((d, original) => (d.data.kind === 'root' || (d as FlameNode & { highlight?: boolean }).highlight ? original : colour(d, original)))
    .setSearchMatch((d, term) => term !== '' && d.data.name.toLowerCase().includes(term.toLowerCase()))
    .setSearchHandler((results, sum, all) => {
      const term = el<HTMLInputElement>('search').value;
      const names = [...new Set(results.map((r) => r.data.name))];
      el('search-result').textContent = term
        ? `"${term}": ${names.length} functions (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}), ${((100 * sum) / (all || 1)).toFixed(1)}% of the time shown`
        : '';
    });
  d3.select(box).datum(tree).call(chart);
  state.chart = chart;
  const term = el<HTMLInputElement>('search').value;
  if (term) chart.search(term);
}

// ---- filters -------------------------------------------------------------------------------------------------

/** Label keys of the capture, with the time (value) behind each of their values. */
function labelTotals(m: FlameModel): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const s of m.samples) {
    for (let i = 3; i < s.length; i++) {
      const [k, v] = m.labels[s[i]!]!;
      const values = out.get(k) ?? new Map<string, number>();
      values.set(v, (values.get(v) ?? 0) + s[2]!);
      out.set(k, values);
    }
  }
  return out;
}

const KEY_NAMES: Record<string, string> = { goid: 'goroutine (goid)', tid: 'thread (tid)', pid: 'process (pid)', comm: 'thread name (comm)' };

function renderFilterKeys(): void {
  const keySel = el<HTMLSelectElement>('filter-key');
  keySel.replaceChildren(new Option('filter by label…', ''));
  if (!state.model) return;
  const totals = labelTotals(state.model);
  // goroutine first, then the program's own pprof labels and the rest, alphabetically.
  const keys = [...totals.keys()].sort((a, b) => (a === 'goid' ? -1 : b === 'goid' ? 1 : a.localeCompare(b)));
  for (const k of keys) keySel.add(new Option(`${KEY_NAMES[k] ?? k} (${totals.get(k)!.size})`, k));
  renderFilterValues();
  renderFilterChips();
}

function renderFilterValues(): void {
  const key = el<HTMLSelectElement>('filter-key').value;
  const valSel = el<HTMLSelectElement>('filter-value');
  valSel.replaceChildren();
  valSel.disabled = el<HTMLButtonElement>('filter-add').disabled = !key || !state.model;
  if (!key || !state.model) return;
  const values = labelTotals(state.model).get(key) ?? new Map<string, number>();
  const total = state.model.samples.reduce((n, s) => n + s[2]!, 0) || 1;
  const sorted = [...values].sort((a, b) => b[1] - a[1]).slice(0, 500);
  for (const [v, n] of sorted) valSel.add(new Option(`${v} — ${((100 * n) / total).toFixed(1)}%`, v));
}

function renderFilterChips(): void {
  const box = el('filters');
  box.replaceChildren();
  state.filters.forEach(([k, v], i) => {
    const chip = make('span', `${KEY_NAMES[k] ?? k} = ${v}`, 'chip');
    const x = make('button', '×');
    x.type = 'button';
    x.title = 'Remove this filter';
    x.addEventListener('click', () => {
      state.filters.splice(i, 1);
      renderFilterChips();
      draw();
    });
    chip.append(x);
    box.append(chip);
  });
}

// ---- findings ------------------------------------------------------------------------------------------------

function pct(share: number): string {
  return `${(100 * share).toFixed(1)}%`;
}

function renderFindings(c: CaptureInfo): void {
  const box = el('findings');
  box.replaceChildren();
  const findings: Finding[] = c.findings ?? [];
  if (c.findings === undefined) box.append(make('p', 'This capture was not diagnosed.', 'muted'));
  else if (findings.length === 0) box.append(make('p', 'No rule fired: none of the known Go failure shapes is in this capture.', 'muted'));
  for (const f of findings) {
    const card = make('div', undefined, `finding ${f.severity}`);
    card.dataset['rule'] = f.rule;
    const h = make('h3', f.rule + (f.pid !== undefined && c.pid === undefined ? ` (pid ${f.pid})` : ''));
    h.append(make('span', f.severity, 'sev'));
    card.append(h, make('p', f.evidence.summary));
    const items: string[] = [];
    for (const fn of f.evidence.functions ?? []) items.push(`${fn.function} ${pct(fn.share)}`);
    for (const g of f.evidence.stacks ?? []) items.push(`${g.count} × [${g.state}${g.waitMinutes ? `, ${g.waitMinutes} min` : ''}] ${g.frames.slice(0, 4).join(' ← ')}`);
    if (items.length) {
      const ul = make('ul');
      for (const t of items.slice(0, 8)) {
        const li = make('li');
        li.append(make('code', t));
        ul.append(li);
      }
      card.append(ul);
    }
    card.append(make('p', f.advice, 'advice'));
    box.append(card);
  }
  for (const n of c.notes ?? []) box.append(make('p', n, 'muted'));
}

// ---- wiring --------------------------------------------------------------------------------------------------

function debounce(f: () => void, ms: number): () => void {
  let t: number | undefined;
  return () => {
    window.clearTimeout(t);
    t = window.setTimeout(f, ms);
  };
}

function main(): void {
  el('capture-form').addEventListener('submit', (ev) => void startCapture(ev).catch((e) => {
    el<HTMLButtonElement>('capture').disabled = false;
    showError(e);
  }));
  el('refresh-processes').addEventListener('click', () => void loadProcesses().catch(showError));
  el('search').addEventListener(
    'input',
    debounce(() => {
      const term = el<HTMLInputElement>('search').value;
      if (!state.chart) return;
      if (term) state.chart.search(term);
      else {
        state.chart.clear();
        el('search-result').textContent = '';
      }
    }, 150),
  );
  el('reset-zoom').addEventListener('click', () => state.chart?.resetZoom());
  el('filter-key').addEventListener('change', renderFilterValues);
  el('filter-add').addEventListener('click', () => {
    const k = el<HTMLSelectElement>('filter-key').value;
    const v = el<HTMLSelectElement>('filter-value').value;
    if (!k || !v || state.filters.some(([a, b]) => a === k && b === v)) return;
    state.filters.push([k, v]);
    renderFilterChips();
    draw();
  });
  window.addEventListener('resize', debounce(draw, 250));
  void loadProcesses().catch(showError);
  void pollCaptures();
}

// vendor.js is deferred, and module scripts run after deferred ones: d3 and flamegraph are there.
main();
