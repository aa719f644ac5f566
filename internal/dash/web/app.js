// taillight dashboard: plain JavaScript, no build step, no third-party code.
// Charts are SVG drawn here. The page state (view, range, filters, Top N,
// the open invocation) lives in the URL fragment: a link reproduces the
// view, and every change the user makes is a history entry, so the back
// button works.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1c7ed6', '#e8590c', '#2f9e44', '#ae3ec9', '#f08c00', '#0c8599', '#c2255c', '#5c940d', '#364fc7', '#868e96'];
const OTHER_COLOR = '#adb5bd';
// Outcomes keep their colour in every chart.
const OUTCOME_COLORS = { ok: '#2f9e44', exception: '#e03131', exceededCpu: '#f08c00', exceededMemory: '#ae3ec9', canceled: '#868e96', unknown: '#495057', scriptNotFound: '#1c7ed6', responseStreamDisconnected: '#0c8599', loadShed: '#c2255c', exceededWallTime: '#e8590c' };
// Panels in this order first; any other saved query follows.
const ORDER = ['overview', 'errors_per_endpoint', 'outcomes_per_script', 'top_failing_routes', 'requests_per_colo', 'script_time', 'recent_exceptions', 'log_search'];
const WIDE = new Set(['overview', 'recent_exceptions', 'log_search']);
// The page's filters, in the order of the controls: each is a request
// parameter of the same name (internal/dash/filters.go). A new filter is
// one more entry here. pick: a select filled from /api/filters[pick];
// options: a fixed select; otherwise a text box.
const FILTERS = [
  { key: 'script', label: 'Script', pick: 'scripts' },
  { key: 'namespace', label: 'Namespace', pick: 'namespaces' },
  { key: 'worker_id', label: 'Worker', pick: 'workers' },
  { key: 'colo', label: 'Colo', pick: 'colos' },
  { key: 'outcome', label: 'Outcome', pick: 'outcomes' },
  { key: 'status_class', label: 'Status', options: ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] },
  { key: 'route', label: 'Route', placeholder: 'route template, e.g. /u/:id' },
  { key: 'search', label: 'Search', placeholder: 'text in logs, exceptions, URL' },
];
// Result columns that set a filter when their row, bar or series is
// clicked ("other" rows set none). A "script" column is a label
// (namespace/script[worker]): the parts come in their own columns.
const CLICK_FILTERS = {
  script_name: 'script', series_script: 'script', dispatch_namespace: 'namespace', series_namespace: 'namespace',
  worker_id: 'worker_id', series_worker_id: 'worker_id', colo: 'colo', outcome: 'outcome', route: 'route', series_route: 'route',
};
// Columns that only serve links and clicks: not shown in tables.
const HIDDEN = new Set(['kafka_topic', 'kafka_partition', 'kafka_offset', 'event_time', 'other', 'series_script', 'series_namespace', 'series_worker_id', 'series_route']);
const PARTS = ['script_name', 'dispatch_namespace', 'worker_id'];
const HIDDEN_BY_QUERY = {
  top_failing_routes: new Set([...PARTS, 'method', 'host', 'route']),
  script_time: new Set(PARTS),
  recent_exceptions: new Set(['script_name']),
  log_search: new Set(['script_name']),
  invocations: new Set(['script_name']),
};
const PAGE_SIZE = 50;
const SHORT = 60; // characters of a name shown before it is shortened

let meta = null;
let timer = null;
let generation = 0;
let loads = 0;
let state = null;
// Panels whose "other" line is drawn although it dwarfs the top series.
const showOther = new Set();

function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

// An API error keeps the server's classification: which limit was hit
// and how to narrow the view (internal/dash/limits.go).
class APIError extends Error {
  constructor(body, status) {
    super(body.error || String(status));
    this.limit = body.limit || '';
    this.hint = body.hint || '';
    this.status = status;
  }
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: r.status + ' ' + r.statusText }; }
  if (!r.ok) throw new APIError(body, r.status);
  return body;
}

// errorBox: what went wrong in words a person can act on; the raw text
// behind a "details" toggle.
// failed shows e in body and marks box failed, then rethrows it; a load
// that a newer one (generation) has replaced shows nothing.
function failed(box, body, gen, e) {
  if (gen !== generation) return;
  body.replaceChildren(errorBox(e));
  box.dataset.state = 'error';
  throw e;
}

function errorBox(e) {
  const box = el('div', { class: 'error', 'data-limit': e.limit || '' });
  if (e.limit) {
    box.append(el('strong', { text: `Stopped by the ${e.limit} limit.` }), ' ', el('span', { class: 'hint', text: e.hint }));
    box.append(el('details', {}, el('summary', { text: 'details' }), el('pre', { text: e.message })));
  } else {
    box.append(el('pre', { text: e.message }));
  }
  return box;
}

// ---- formatting ----

const isNumType = (t) => /^(Nullable\()?(U?Int|Float|Decimal)/.test(t || '');
const isTimeType = (t) => /^(Nullable\()?Date/.test(t || '');

function fmtNum(v) {
  if (v === null || v === undefined) return '';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

function pad(n) { return String(n).padStart(2, '0'); }
function fmtTime(sec, short, seconds) {
  const d = new Date(sec * 1000);
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes()) + (seconds ? ':' + pad(d.getSeconds()) : '');
  if (short) return hm;
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}
function fmtMs(ms) {
  const d = new Date(Number(ms));
  return fmtTime(Math.floor(ms / 1000)) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

function fmtCell(v, type) {
  if (v === null || v === undefined) return '';
  if (isTimeType(type) && typeof v === 'number') return fmtTime(v);
  if (isNumType(type)) return fmtNum(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// shorten cuts a long name in the middle, where names that share a
// prefix (a script) and differ at the end (a route) lose least; the full
// text goes in a title (hover).
function shorten(s, n) {
  s = String(s);
  n = n || SHORT;
  if (s.length <= n) return s;
  const head = Math.floor((n - 1) * 0.45);
  return s.slice(0, head) + '…' + s.slice(s.length - (n - 1 - head));
}

// ---- state: view, range, filters, Top N, open invocation; in the URL ----

function toLocalInput(sec) {
  const d = new Date(sec * 1000);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

function defaultState() {
  const f = {};
  for (const x of FILTERS) f[x.key] = '';
  return { view: 'dash', range: '3600', from: 0, to: 0, filters: f, n: 10, refresh: meta ? meta.refresh_s : 30, page: 0, inv: null };
}

function parseState(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const s = defaultState();
  if (p.get('from') && p.get('to')) {
    s.range = 'custom';
    s.from = Number(p.get('from'));
    s.to = Number(p.get('to'));
  } else if (p.get('range')) s.range = p.get('range');
  for (const x of FILTERS) s.filters[x.key] = p.get(x.key) || '';
  if (p.get('n')) s.n = Number(p.get('n')) || 10;
  if (p.has('refresh')) s.refresh = Number(p.get('refresh')) || 0;
  if (['dash', 'invocations', 'invocation'].includes(p.get('view'))) s.view = p.get('view');
  s.page = Math.max(0, Number(p.get('page')) || 0);
  if (s.view === 'invocation') {
    s.inv = { script: p.get('i_script') || '', at: Number(p.get('i_at')) || 0, topic: p.get('i_topic') || '', partition: Number(p.get('i_partition')) || 0, offset: p.get('i_offset') || '0' };
  }
  return s;
}

function stateHash(s) {
  const p = new URLSearchParams();
  if (s.view !== 'dash') p.set('view', s.view);
  if (s.range === 'custom') { p.set('from', s.from); p.set('to', s.to); } else p.set('range', s.range);
  for (const x of FILTERS) if (s.filters[x.key]) p.set(x.key, s.filters[x.key]);
  if (s.n !== 10) p.set('n', s.n);
  p.set('refresh', s.refresh);
  if (s.view === 'invocations' && s.page) p.set('page', s.page);
  if (s.view === 'invocation' && s.inv) {
    p.set('i_script', s.inv.script); p.set('i_at', s.inv.at); p.set('i_topic', s.inv.topic);
    p.set('i_partition', s.inv.partition); p.set('i_offset', s.inv.offset);
  }
  return '#' + p.toString();
}

// go makes s the page's state: a new history entry (push) or the current
// one replaced, then the page redrawn.
function go(s, push) {
  state = s;
  const h = stateHash(s);
  if (h !== location.hash) {
    if (push) history.pushState(null, '', h); else history.replaceState(null, '', h);
  }
  applyControls();
  schedule();
  refresh();
}

// change copies the state, lets fn edit it, and pushes the result.
function change(fn) {
  const s = structuredClone(state);
  fn(s);
  go(s, true);
}

function currentRange(s) {
  if (s.range === 'custom') {
    if (!Number.isFinite(s.from) || !Number.isFinite(s.to) || s.from >= s.to) throw new Error('custom range: "from" must be before "to"');
    return { from: s.from, to: s.to };
  }
  const to = Math.floor(Date.now() / 1000);
  return { from: to - (Number(s.range) || 3600), to };
}

function ensureOption(sel, value, text) {
  for (const o of sel.options) if (o.value === value) return o;
  const o = el('option', { value, text: shorten(text === undefined ? value : text, 40), title: value });
  sel.append(o);
  return o;
}

// applyControls shows the state in the header controls and the views.
function applyControls() {
  const s = state;
  ensureOption($('range'), s.range, s.range + ' s');
  $('range').value = s.range;
  $('custom').hidden = s.range !== 'custom';
  if (s.range === 'custom') { $('from').value = toLocalInput(s.from); $('to').value = toLocalInput(s.to); }
  for (const x of FILTERS) {
    const c = $('f-' + x.key), v = s.filters[x.key];
    if (c.tagName === 'SELECT') ensureOption(c, v, v === '' ? 'all' : v);
    c.value = v;
    c.closest('label').classList.toggle('set', v !== '');
  }
  ensureOption($('topn'), String(s.n));
  $('topn').value = String(s.n);
  ensureOption($('refresh'), String(s.refresh), s.refresh ? s.refresh + ' s' : 'off');
  $('refresh').value = String(s.refresh);
  $('panels').hidden = s.view !== 'dash';
  $('sqlbox').hidden = s.view !== 'dash' || meta.sql === false; // -dash.sql=false
  $('explorer').hidden = s.view !== 'invocations';
  $('invocation').hidden = s.view !== 'invocation';
  for (const a of document.querySelectorAll('#tabs a')) {
    a.classList.toggle('on', a.dataset.view === s.view || (a.dataset.view === 'invocations' && s.view === 'invocation'));
    const t = structuredClone(s);
    t.view = a.dataset.view; t.page = 0; t.inv = null;
    a.href = stateHash(t);
  }
}

// readControls: the state the header controls say.
function readControls() {
  const s = structuredClone(state);
  s.range = $('range').value;
  if (s.range === 'custom') {
    s.from = Math.floor(new Date($('from').value).getTime() / 1000);
    s.to = Math.floor(new Date($('to').value).getTime() / 1000);
  }
  for (const x of FILTERS) s.filters[x.key] = $('f-' + x.key).value;
  s.n = Number($('topn').value);
  s.refresh = Number($('refresh').value);
  const moved = s.range !== state.range || s.from !== state.from || s.to !== state.to || FILTERS.some((x) => s.filters[x.key] !== state.filters[x.key]);
  if (moved) s.page = 0;
  // New filters on an open invocation: back to the list they select.
  if (moved && s.view === 'invocation') { s.view = 'invocations'; s.inv = null; }
  return s;
}

function buildFilterControls() {
  const box = $('filters');
  box.replaceChildren();
  for (const x of FILTERS) {
    let c;
    if (x.pick || x.options) {
      c = el('select', { id: 'f-' + x.key }, el('option', { value: '', text: 'all' }));
      for (const o of x.options || []) c.append(el('option', { value: o, text: o }));
      c.addEventListener('change', () => go(readControls(), true));
    } else {
      c = el('input', { type: 'search', id: 'f-' + x.key, placeholder: x.placeholder || '' });
      // Enter submits the form; the box's clear button fires "search".
      c.addEventListener('search', () => { if (c.value === '') go(readControls(), true); });
    }
    box.append(el('label', { 'data-filter': x.key }, x.label + ' ', c));
  }
}

function queryParams(rng, extra) {
  const p = new URLSearchParams({ from: rng.from, to: rng.to });
  for (const x of FILTERS) p.set(x.key, state.filters[x.key]);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p;
}

// ---- clicks that filter ----

// rowFilters: the filters a clicked row, bar or series sets.
function rowFilters(res, row) {
  const f = {};
  const oi = res.columns.findIndex((c) => c.name === 'other');
  if (oi >= 0 && Number(row[oi])) return f;
  res.columns.forEach((c, i) => {
    const k = CLICK_FILTERS[c.name];
    if (k && k in state.filters && row[i] !== '' && row[i] !== null && f[k] === undefined) f[k] = String(row[i]);
  });
  return f;
}

// applyFilters sets the filters f. One that names a route opens the
// invocation explorer: no panel filters by route.
function applyFilters(f) {
  if (!Object.keys(f).length) return;
  change((s) => {
    Object.assign(s.filters, f);
    if (f.route) s.view = 'invocations';
    s.page = 0;
  });
}

// Invocation identity: script, event time (s) and Kafka coordinates.
function invOf(res, row) {
  const col = (n) => { const i = res.columns.findIndex((c) => c.name === n); return i < 0 ? undefined : row[i]; };
  const topic = col('kafka_topic');
  if (topic === undefined) return null;
  const at = col('event_time') !== undefined ? col('event_time') : col('time');
  // A script name longer than a filter may be (1 KB) is left out: the
  // time and coordinates still find the invocation, in a wider read.
  let script = String(col('script_name'));
  if (new TextEncoder().encode(script).length > 1024) script = '';
  return { script, at: Number(at), topic: String(topic), partition: Number(col('kafka_partition')), offset: String(col('kafka_offset')) };
}

function invHash(inv) {
  const s = structuredClone(state);
  s.view = 'invocation';
  s.inv = inv;
  return stateHash(s);
}

function openInvocation(inv) {
  change((s) => { s.view = 'invocation'; s.inv = inv; });
}

// ---- charts ----

function niceMax(v) {
  if (!(v > 0)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * e) return m * e;
  return 10 * e;
}

function colIndex(res, name) {
  const i = res.columns.findIndex((c) => c.name === name);
  if (i < 0) throw new Error('the result has no column "' + name + '"');
  return i;
}

function legendItem(name, color, total, onclick) {
  const item = el('button', { type: 'button', class: 'item', title: `${name} (${fmtNum(total)})`, 'data-series': name, 'data-total': total },
    el('i'), el('span', { class: 'name', text: shorten(name, 48) }), el('span', { class: 'n', text: fmtNum(total) }));
  item.firstChild.style.background = color; // CSSOM: the CSP allows no style attributes
  if (onclick) item.addEventListener('click', onclick); else item.disabled = true;
  return item;
}

function lineChart(q, res) {
  const xi = colIndex(res, q.x), yi = colIndex(res, q.y);
  const si = q.series ? colIndex(res, q.series) : -1;
  const step = res.params.step || 60;
  let from = Math.floor(res.params.from / step) * step;
  const to = res.params.to;
  const series = new Map();
  let first = Infinity;
  for (const row of res.rows) {
    const name = si >= 0 ? String(row[si]) : q.y;
    if (!series.has(name)) series.set(name, { m: new Map(), row });
    const m = series.get(name).m;
    m.set(row[xi], (m.get(row[xi]) || 0) + Number(row[yi] || 0));
    first = Math.min(first, row[xi]);
  }
  // Short data: the axis starts a few buckets before the first one with
  // data instead of squeezing it against the right edge.
  let zoomed = false;
  if (Number.isFinite(first) && first - from > (to - from) / 4) {
    from = Math.max(from, first - 2 * step);
    zoomed = true;
  }
  const xs = [];
  for (let t = from; t < to; t += step) xs.push(t);
  // "other" sums many series and can dwarf the top ones: when it peaks
  // above twice their highest point it is left out of the scale and
  // drawn only on request (its legend entry).
  const isOtherSeries = ([name, { row }]) => name === 'other' && !Object.keys(rowFilters(res, row)).length;
  let ymax = 0, otherMax = 0;
  for (const e of series) for (const v of e[1].m.values()) {
    if (isOtherSeries(e)) otherMax = Math.max(otherMax, v); else ymax = Math.max(ymax, v);
  }
  const otherKey = q.name + ':other';
  const hideOther = otherMax > 2 * ymax && ymax > 0 && !showOther.has(otherKey);
  if (!hideOther) ymax = Math.max(ymax, otherMax);
  ymax = niceMax(ymax);
  const W = 640, H = 230, L = 48, R = 12, T = 10, B = 24;
  const span = Math.max(1, to - from);
  const px = (t) => L + (W - L - R) * (t - from) / span;
  const py = (v) => T + (H - T - B) * (1 - v / ymax);
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': q.title, 'data-from': from, 'data-zoomed': zoomed });
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, y = py(v);
    svg.append(el('svg:line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    svg.append(el('svg:text', { class: 'tick', x: L - 4, y: y + 4, 'text-anchor': 'end', text: fmtNum(v) }));
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = Math.round(from + span * i / ticks);
    svg.append(el('svg:text', { class: 'tick', x: px(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle', text: fmtTime(t, span <= 2 * 86400, span < 900) }));
  }
  svg.append(el('svg:line', { class: 'axis', x1: L, x2: W - R, y1: py(0), y2: py(0) }));
  const legend = el('div', { class: 'legend' });
  let i = 0;
  for (const [name, { m, row }] of series) {
    const f = rowFilters(res, row);
    const isOther = isOtherSeries([name, { row }]);
    const color = isOther ? OTHER_COLOR : PALETTE[i % PALETTE.length];
    let total = 0;
    const pts = xs.map((t) => { const v = m.get(t) || 0; total += v; return [px(t), py(v)]; });
    let onclick = Object.keys(f).length ? () => applyFilters(f) : null;
    if (isOther && (hideOther || showOther.has(otherKey))) {
      onclick = () => { if (showOther.has(otherKey)) showOther.delete(otherKey); else showOther.add(otherKey); refresh(); };
    }
    if (!(isOther && hideOther)) {
      const line = el('svg:polyline', { points: pts.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': name, 'data-total': total, class: isOther ? 'other' : undefined });
      line.append(el('svg:title', { text: `${name}: ${fmtNum(total)}` }));
      svg.append(line);
      if (xs.length <= 40) for (const p of pts) svg.append(el('svg:circle', { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 2.5, fill: color }));
    }
    const item = legendItem(isOther && hideOther ? 'other (not drawn: click to show)' : name, color, total, onclick);
    if (isOther) item.dataset.series = 'other';
    legend.append(item);
    i++;
  }
  const out = [svg, legend];
  if (zoomed) out.unshift(el('div', { class: 'note', text: `data from ${fmtTime(first, true)}: axis starts there` }));
  return out;
}

// barChart: horizontal bars, one per row; with a series column, stacked
// segments per x label (e.g. outcomes per script).
function barChart(q, res) {
  const xi = colIndex(res, q.x), yi = colIndex(res, q.y);
  const si = q.series ? colIndex(res, q.series) : -1;
  const oi = res.columns.findIndex((c) => c.name === 'other');
  const bars = new Map(); // label → {total, segs: [{name, v, row}], other}
  for (const r of res.rows) {
    const isOther = oi >= 0 && Number(r[oi]) === 1;
    const key = (isOther ? '\u0000' : '') + String(r[xi]);
    if (!bars.has(key)) bars.set(key, { label: String(r[xi]), total: 0, segs: [], other: isOther, row: r });
    const b = bars.get(key);
    const v = Number(r[yi] || 0);
    b.total += v;
    b.segs.push({ name: si >= 0 ? String(r[si]) : q.y, v, row: r });
  }
  const list = [...bars.values()];
  if (si >= 0) list.sort((a, b) => (a.other - b.other) || (b.total - a.total) || a.label.localeCompare(b.label));
  const names = [...new Set(list.flatMap((b) => b.segs.map((s) => s.name)))].sort();
  const colorOf = (n) => si < 0 ? PALETTE[0] : (OUTCOME_COLORS[n] || PALETTE[names.indexOf(n) % PALETTE.length]);
  // An "other" bar far longer than the top ones is cut at the edge (its
  // figure stays exact), so the top bars keep a readable length.
  const topMax = Math.max(0, ...list.filter((b) => !b.other).map((b) => b.total));
  const otherMax = Math.max(0, ...list.filter((b) => b.other).map((b) => b.total));
  const cut = topMax > 0 && otherMax > 2 * topMax;
  const max = niceMax(cut ? topMax : Math.max(topMax, otherMax));
  const W = 640, rowH = 22, LBL = 230, VAL = 70;
  const H = list.length * rowH + 6;
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': q.title });
  list.forEach((b, i) => {
    const y = 3 + i * rowH;
    const t = el('svg:text', { x: LBL - 6, y: y + 15, 'text-anchor': 'end', class: b.other ? 'other' : 'label', text: shorten(b.label, 34) });
    t.append(el('svg:title', { text: b.label }));
    svg.append(t);
    let x = LBL;
    const scale = b.other && cut ? max / b.total : 1; // a cut bar fills the width
    for (const sg of b.segs) {
      const w = Math.max(sg.v > 0 ? 1 : 0, (W - LBL - VAL) * sg.v * scale / max);
      const f = rowFilters(res, sg.row);
      const rect = el('svg:rect', { x, y: y + 3, width: w, height: rowH - 6, fill: b.other ? OTHER_COLOR : colorOf(sg.name), 'data-label': b.label, 'data-series': sg.name, 'data-value': sg.v, class: Object.keys(f).length ? 'click' : '' });
      rect.append(el('svg:title', { text: `${b.label}${si >= 0 ? ' · ' + sg.name : ''}: ${fmtNum(sg.v)}` }));
      if (Object.keys(f).length) rect.addEventListener('click', () => applyFilters(f));
      svg.append(rect);
      x += w;
    }
    if (b.other && cut) {
      const mark = el('svg:path', { class: 'cut', d: `M${x - 26},${y + 2} l4,${rowH - 4} M${x - 30},${y + 2} l4,${rowH - 4}` });
      mark.append(el('svg:title', { text: 'bar cut: far longer than the others' }));
      svg.append(mark);
    }
    svg.append(el('svg:text', { class: 'bar-value', x: x + 4, y: y + 15, 'data-label': b.label, text: fmtNum(b.total) }));
  });
  const out = [svg];
  if (si >= 0) {
    const legend = el('div', { class: 'legend' });
    for (const n of names) {
      const total = list.reduce((a, b) => a + b.segs.filter((s) => s.name === n).reduce((x, s) => x + s.v, 0), 0);
      const f = {};
      f[CLICK_FILTERS[q.series] || q.series] = n;
      legend.append(legendItem(n, colorOf(n), total, (CLICK_FILTERS[q.series] && CLICK_FILTERS[q.series] in state.filters) ? () => applyFilters(f) : null));
    }
    out.push(legend);
  }
  return out;
}

function statTiles(res) {
  const box = el('div', { class: 'stats' });
  const row = res.rows[0] || [];
  res.columns.forEach((c, i) => {
    box.append(el('div', { class: 'stat', 'data-col': c.name },
      el('div', { class: 'v', 'data-col': c.name, text: fmtCell(row[i], c.type) }),
      el('div', { class: 'k', text: c.name.replace(/_/g, ' ') })));
  });
  return [box];
}

// table: rows as they come. A row that names an invocation links to it;
// one whose columns map to filters applies them when clicked.
function table(res, q) {
  const hide = (q && HIDDEN_BY_QUERY[q.name]) || new Set();
  const cols = res.columns.map((c, i) => ({ c, i })).filter(({ c }) => !q || (!HIDDEN.has(c.name) && !hide.has(c.name)));
  const head = el('tr', {}, ...cols.map(({ c }) => el('th', { class: isNumType(c.type) ? 'num' : '', title: c.type, text: c.name })));
  const body = el('tbody');
  for (const row of res.rows) {
    const inv = q ? invOf(res, row) : null;
    const tr = el('tr', inv ? { class: 'link', 'data-offset': inv.offset, 'data-partition': inv.partition, 'data-topic': inv.topic } : {});
    cols.forEach(({ c, i }, k) => {
      const full = fmtCell(row[i], c.type);
      const td = el('td', { class: isNumType(c.type) ? 'num' : '', 'data-col': c.name, title: full.length > 200 ? full.slice(0, 4000) : undefined });
      const text = full.length > 200 ? full.slice(0, 199) + '…' : full;
      if (inv && k === 0) td.append(el('a', { href: invHash(inv), text, class: 'inv' }));
      else td.textContent = text;
      tr.append(td);
    });
    if (inv) tr.addEventListener('click', (ev) => { ev.preventDefault(); openInvocation(inv); });
    else if (q) {
      const f = rowFilters(res, row);
      if (Object.keys(f).length) {
        tr.classList.add('click');
        tr.addEventListener('click', () => applyFilters(f));
      }
    }
    body.append(tr);
  }
  return el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, head), body));
}

function render(q, res) {
  if (q.chart !== 'stat' && res.rows.length === 0) return [el('div', { class: 'empty', text: 'No data in this range.' })];
  switch (q.chart) {
    case 'line': return lineChart(q, res);
    case 'bar': return q.series ? barChart(q, res) : [...barChart(q, res), table(res, q)];
    case 'stat': return statTiles(res);
    default: return [table(res, q)];
  }
}

// ---- panels ----

function panelQueries() {
  return meta.queries.filter((q) => q.panel !== false);
}

function buildPanels() {
  const main = $('panels');
  main.replaceChildren();
  const qs = [...panelQueries()].sort((a, b) => {
    const ia = ORDER.indexOf(a.name), ib = ORDER.indexOf(b.name);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.name.localeCompare(b.name);
  });
  for (const q of qs) {
    main.append(el('section', { class: 'panel' + (WIDE.has(q.name) ? ' wide' : ''), id: 'panel-' + q.name, 'data-query': q.name, 'data-state': 'loading' },
      el('span', { class: 'meta' }),
      el('h2', { text: q.title }),
      el('p', { class: 'desc', text: q.description }),
      el('div', { class: 'body' })));
  }
}

async function loadPanel(q, rng, gen) {
  const panel = $('panel-' + q.name);
  const body = panel.querySelector('.body');
  const extra = { limit: q.chart === 'table' ? 50 : state.n };
  try {
    const res = await api('/api/query/' + encodeURIComponent(q.name) + '?' + queryParams(rng, extra));
    if (gen !== generation) return;
    body.replaceChildren(...render(q, res));
    // A set filter this query does not take: say so rather than seem to apply it.
    const ignored = FILTERS.filter((x) => state.filters[x.key] && !q.params.some((p) => p.name === x.key)).map((x) => x.label.toLowerCase());
    panel.querySelector('.meta').textContent = `${res.rows.length} rows${res.truncated ? ` (truncated at the ${res.limit === 'bytes' ? 'response size' : 'row'} limit)` : ''} · ${Math.round(res.elapsed_ms)} ms${ignored.length ? ' · not filtered by ' + ignored.join(', ') : ''}`;
    panel.querySelector('.meta').title = res.sql;
    panel.dataset.rows = res.rows.length;
    panel.dataset.state = 'ok';
  } catch (e) {
    failed(panel, body, gen, e);
  }
}

async function loadFilters(rng) {
  const f = await api('/api/filters?' + new URLSearchParams({ from: rng.from, to: rng.to }));
  for (const x of FILTERS) {
    if (!x.pick) continue;
    const sel = $('f-' + x.key), keep = state.filters[x.key];
    sel.replaceChildren(el('option', { value: '', text: 'all' }));
    for (const v of f[x.pick] || []) sel.append(el('option', { value: v, text: v === '' ? '(empty)' : shorten(v, 40), title: v }));
    if (keep) ensureOption(sel, keep);
    sel.value = keep;
  }
}

// ---- the invocation explorer ----

async function loadExplorer(rng, gen) {
  const box = $('explorer');
  const body = $('explorer-body');
  box.dataset.state = 'loading';
  try {
    const res = await api('/api/query/invocations?' + queryParams(rng, { limit: PAGE_SIZE + 1, skip: state.page * PAGE_SIZE }));
    if (gen !== generation) return;
    const more = res.rows.length > PAGE_SIZE;
    res.rows = res.rows.slice(0, PAGE_SIZE);
    const q = meta.queries.find((x) => x.name === 'invocations');
    body.replaceChildren(res.rows.length ? table(res, q) : el('div', { class: 'empty', text: state.page ? 'No more invocations in this range.' : 'No invocations match in this range.' }));
    $('explorer-meta').textContent = `${Math.round(res.elapsed_ms)} ms`;
    $('explorer-meta').title = res.sql;
    $('pageno').textContent = res.rows.length ? `${state.page * PAGE_SIZE + 1}–${state.page * PAGE_SIZE + res.rows.length}` : '';
    $('newer').disabled = state.page === 0;
    $('older').disabled = !more;
    box.dataset.rows = res.rows.length;
    box.dataset.state = 'ok';
  } catch (e) {
    failed(box, body, gen, e);
  }
}

function section(title, ...kids) {
  return el('section', { class: 'inv-section' }, el('h3', { text: title }), ...kids);
}

function kvTable(pairs) {
  return el('table', { class: 'kv' }, el('tbody', {}, ...pairs.map(([k, v]) => el('tr', { 'data-field': k }, el('th', { text: k }), el('td', { text: v })))));
}

async function loadInvocation(gen) {
  const box = $('invocation');
  const body = $('inv-body');
  const inv = state.inv;
  box.dataset.state = 'loading';
  try {
    if (!inv || !inv.topic) throw new Error('no invocation named in the URL (i_script, i_at, i_topic, i_partition, i_offset)');
    const p = new URLSearchParams({ from: inv.at, to: inv.at + 1, script: inv.script, namespace: state.filters.namespace, worker_id: state.filters.worker_id, topic: inv.topic, partition: inv.partition, offset: inv.offset, limit: 1 });
    const res = await api('/api/query/invocation?' + p);
    if (gen !== generation) return;
    if (!res.rows.length) {
      body.replaceChildren(el('div', { class: 'empty', text: `No invocation at ${inv.topic}/${inv.partition}/${inv.offset} (${fmtTime(inv.at)}): it may be past the raw retention.` }));
      box.dataset.state = 'ok';
      box.dataset.found = 'no';
      return;
    }
    const row = res.rows[0];
    const v = {};
    res.columns.forEach((c, i) => { v[c.name] = { value: row[i], type: c.type }; });
    const val = (n) => (v[n] ? v[n].value : undefined);
    const ns = val('dispatch_namespace') || '', wid = val('worker_id') || '';
    const title = `${ns ? ns + '/' : ''}${val('script_name')}${wid ? '[' + wid + ']' : ''} · ${val('event_kind')} · ${val('outcome')}`;
    $('inv-title').textContent = shorten(title, 120);
    $('inv-title').title = title;
    const kids = [];
    const scalar = res.columns.filter((c) => !/^(headers|logs|exceptions)\./.test(c.name));
    kids.push(section('Fields', kvTable(scalar.map((c) => [c.name, c.name === 'event_ts_ms' ? fmtMs(v[c.name].value) + ` (${v[c.name].value})` : fmtCell(v[c.name].value, c.type)]))));
    const hn = val('headers.name') || [], hv = val('headers.value') || [];
    kids.push(section(`Request headers (${hn.length})`, hn.length ? kvTable(hn.map((n, i) => [n, hv[i]])) : el('div', { class: 'empty', text: 'none stored' })));
    const ll = val('logs.level') || [], lm = val('logs.message') || [], lt = val('logs.ts_ms') || [];
    const logs = el('ol', { class: 'logs' });
    ll.forEach((lvl, i) => logs.append(el('li', { class: 'lvl-' + lvl, 'data-level': lvl },
      el('span', { class: 'ts', text: fmtMs(lt[i]) }), el('span', { class: 'lvl', text: lvl }), el('span', { class: 'msg', text: lm[i] }))));
    kids.push(section(`Logs (${ll.length})`, ll.length ? logs : el('div', { class: 'empty', text: 'no console lines' })));
    const en = val('exceptions.name') || [], em = val('exceptions.message') || [], es = val('exceptions.stack') || [], et = val('exceptions.ts_ms') || [];
    const excs = el('div', { class: 'exceptions' });
    en.forEach((n, i) => excs.append(el('div', { class: 'exception' },
      el('div', {}, el('span', { class: 'ts', text: fmtMs(et[i]) }), ' ', el('strong', { text: n }), ': ', el('span', { text: em[i] })),
      el('pre', { class: 'stack', text: es[i] || '(no stack)' }))));
    kids.push(section(`Exceptions (${en.length})`, en.length ? excs : el('div', { class: 'empty', text: 'none' })));
    kids.push(section('Kafka', kvTable([['topic', val('kafka_topic')], ['partition', String(val('kafka_partition'))], ['offset', String(val('kafka_offset'))], ['inserted_at', fmtCell(val('inserted_at'), 'DateTime')]])));
    body.replaceChildren(...kids);
    box.dataset.state = 'ok';
    box.dataset.found = 'yes';
  } catch (e) {
    failed(box, body, gen, e);
  }
}

// ---- refresh ----

async function refresh() {
  const gen = ++generation;
  const status = $('status');
  let rng;
  try {
    rng = currentRange(state);
  } catch (e) {
    status.textContent = e.message;
    status.className = 'error';
    return;
  }
  status.textContent = 'loading…';
  status.className = '';
  let jobs = [loadFilters(rng)];
  if (state.view === 'dash') {
    for (const p of document.querySelectorAll('#panels .panel')) p.dataset.state = 'loading';
    jobs = jobs.concat(panelQueries().map((q) => loadPanel(q, rng, gen)));
  } else if (state.view === 'invocations') {
    jobs.push(loadExplorer(rng, gen));
  } else {
    jobs.push(loadInvocation(gen));
  }
  const results = await Promise.allSettled(jobs);
  if (gen !== generation) return;
  const failed = results.filter((r) => r.status === 'rejected');
  const when = fmtTime(Math.floor(Date.now() / 1000));
  if (failed.length) {
    const e = failed[0].reason;
    status.textContent = `${failed.length} of ${jobs.length} requests failed (${e.limit ? 'the ' + e.limit + ' limit' : shorten(e.message, 80)}) · ${when}`;
    status.className = 'error';
  } else {
    status.textContent = `updated ${when} · ${fmtTime(rng.from)} – ${fmtTime(rng.to)}`;
    status.className = '';
  }
  document.body.dataset.view = state.view;
  document.body.dataset.loads = ++loads;
}

function schedule() {
  if (timer) clearInterval(timer);
  timer = null;
  const s = state.refresh;
  // Auto-refresh keeps the current view; an open invocation does not change.
  if (s > 0) timer = setInterval(() => { if (!document.hidden && state.view !== 'invocation') refresh(); }, s * 1000);
}

// ---- ad-hoc SQL ----

async function runSQL(ev) {
  ev.preventDefault();
  const out = $('sqlresult');
  out.replaceChildren(el('div', { class: 'empty', text: 'running…' }));
  out.dataset.state = 'loading';
  try {
    const res = await api('/api/sql', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sql: $('sql').value }) });
    const note = el('div', { class: 'desc', text: `${res.rows.length} rows${res.truncated ? (res.limit === 'bytes' ? ' (truncated at the response size limit)' : ' (truncated at the row limit)') : ''} · ${Math.round(res.elapsed_ms)} ms` });
    out.replaceChildren(note, table(res));
    out.dataset.state = 'ok';
  } catch (e) {
    out.replaceChildren(errorBox(e));
    out.dataset.state = 'error';
  }
}

async function main() {
  try {
    meta = await api('/api/queries');
  } catch (e) {
    $('status').textContent = 'cannot load the saved queries: ' + e.message;
    $('status').className = 'error';
    return;
  }
  $('dbname').textContent = meta.database;
  buildFilterControls();
  buildPanels();
  state = parseState(location.hash);
  $('range').addEventListener('change', () => {
    if ($('range').value === 'custom' && !$('from').value) {
      const r = Math.floor(Date.now() / 1000);
      $('from').value = toLocalInput(r - 3600);
      $('to').value = toLocalInput(r);
    }
    $('custom').hidden = $('range').value !== 'custom';
    if ($('range').value !== 'custom') go(readControls(), true);
  });
  for (const id of ['topn', 'refresh']) $(id).addEventListener('change', () => go(readControls(), true));
  $('controls').addEventListener('submit', (e) => { e.preventDefault(); go(readControls(), true); });
  $('clear').addEventListener('click', () => change((s) => { for (const x of FILTERS) s.filters[x.key] = ''; s.page = 0; }));
  $('newer').addEventListener('click', () => change((s) => { s.page = Math.max(0, s.page - 1); }));
  $('older').addEventListener('click', () => change((s) => { s.page++; }));
  $('back').addEventListener('click', (e) => { e.preventDefault(); change((s) => { s.view = 'invocations'; s.inv = null; }); });
  for (const a of document.querySelectorAll('#tabs a')) {
    a.addEventListener('click', (e) => { e.preventDefault(); change((s) => { s.view = a.dataset.view; s.page = 0; s.inv = null; }); });
  }
  window.addEventListener('popstate', () => go(parseState(location.hash), false));
  $('sqlform').addEventListener('submit', runSQL);
  $('sql').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSQL(e); });
  go(state, false);
}

document.addEventListener('DOMContentLoaded', main);
