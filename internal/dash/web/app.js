// taillight dashboard: plain JavaScript, no build step, no third-party code.
// Charts are SVG drawn here. The page state (range, filters) lives in the
// URL fragment so a view can be shared or bookmarked.
'use strict';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1c7ed6', '#e8590c', '#2f9e44', '#ae3ec9', '#f08c00', '#0c8599', '#c2255c', '#5c940d', '#364fc7', '#868e96'];
// Panels in this order first; any other saved query follows.
const ORDER = ['overview', 'errors_per_endpoint', 'outcomes_per_script', 'top_failing_routes', 'requests_per_colo', 'script_time', 'recent_exceptions', 'log_search'];
const WIDE = new Set(['overview', 'recent_exceptions', 'log_search']);

let meta = null;
let timer = null;
let generation = 0;
let loads = 0;

function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.setAttribute('class', v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  let body;
  try { body = await r.json(); } catch (e) { body = { error: r.status + ' ' + r.statusText }; }
  if (!r.ok) throw new Error(body.error || (r.status + ' ' + r.statusText));
  return body;
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
function fmtTime(sec, short) {
  const d = new Date(sec * 1000);
  const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
  if (short) return hm;
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm + ':' + pad(d.getSeconds());
}

function fmtCell(v, type) {
  if (v === null || v === undefined) return '';
  if (isTimeType(type) && typeof v === 'number') return fmtTime(v);
  if (isNumType(type)) return fmtNum(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// ---- state: range and filters, mirrored in the URL fragment ----

function toLocalInput(sec) {
  const d = new Date(sec * 1000);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

function currentRange() {
  const r = $('range').value;
  if (r === 'custom') {
    const from = Math.floor(new Date($('from').value).getTime() / 1000);
    const to = Math.floor(new Date($('to').value).getTime() / 1000);
    if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) throw new Error('custom range: "from" must be before "to"');
    return { from, to };
  }
  const to = Math.floor(Date.now() / 1000);
  return { from: to - Number(r), to };
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get('from') && p.get('to')) {
    $('range').value = 'custom';
    $('from').value = toLocalInput(Number(p.get('from')));
    $('to').value = toLocalInput(Number(p.get('to')));
  } else if (p.get('range')) {
    $('range').value = p.get('range');
  }
  for (const k of ['script', 'namespace', 'worker_id', 'colo', 'outcome']) {
    const v = p.get(k);
    if (v) ensureOption($(k), v).selected = true;
  }
  if (p.get('search')) $('search').value = p.get('search');
  if (p.has('refresh')) setRefreshValue(Number(p.get('refresh')));
  $('custom').hidden = $('range').value !== 'custom';
}

function writeHash(rng) {
  const p = new URLSearchParams();
  if ($('range').value === 'custom') { p.set('from', rng.from); p.set('to', rng.to); } else p.set('range', $('range').value);
  for (const k of ['script', 'namespace', 'worker_id', 'colo', 'outcome', 'search']) if ($(k).value) p.set(k, $(k).value);
  p.set('refresh', $('refresh').value);
  history.replaceState(null, '', '#' + p.toString());
}

function ensureOption(sel, value) {
  for (const o of sel.options) if (o.value === value) return o;
  const o = el('option', { value, text: value });
  sel.append(o);
  return o;
}

function setRefreshValue(sec) {
  ensureOption($('refresh'), String(sec)).textContent = sec ? sec + ' s' : 'off';
  $('refresh').value = String(sec);
}

function queryParams(rng, extra) {
  const p = new URLSearchParams({ from: rng.from, to: rng.to });
  for (const k of ['script', 'namespace', 'worker_id', 'colo', 'outcome', 'search']) p.set(k, $(k).value);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p;
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

function lineChart(q, res) {
  const xi = colIndex(res, q.x), yi = colIndex(res, q.y);
  const si = q.series ? colIndex(res, q.series) : -1;
  const step = res.params.step || 60;
  const from = Math.floor(res.params.from / step) * step, to = res.params.to;
  const xs = [];
  for (let t = from; t < to; t += step) xs.push(t);
  const series = new Map();
  for (const row of res.rows) {
    const name = si >= 0 ? String(row[si]) : q.y;
    if (!series.has(name)) series.set(name, new Map());
    const m = series.get(name);
    m.set(row[xi], (m.get(row[xi]) || 0) + Number(row[yi] || 0));
  }
  let ymax = 0;
  for (const m of series.values()) for (const v of m.values()) ymax = Math.max(ymax, v);
  ymax = niceMax(ymax);
  const W = 640, H = 230, L = 48, R = 10, T = 10, B = 24;
  const px = (t) => L + (W - L - R) * (t - from) / Math.max(1, to - from);
  const py = (v) => T + (H - T - B) * (1 - v / ymax);
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': q.title });
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4, y = py(v);
    svg.append(el('svg:line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    svg.append(el('svg:text', { class: 'tick', x: L - 4, y: y + 4, 'text-anchor': 'end', text: fmtNum(v) }));
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = from + (to - from) * i / ticks;
    svg.append(el('svg:text', { class: 'tick', x: px(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle', text: fmtTime(t, to - from <= 2 * 86400) }));
  }
  svg.append(el('svg:line', { class: 'axis', x1: L, x2: W - R, y1: py(0), y2: py(0) }));
  const legend = el('div', { class: 'legend' });
  let i = 0;
  for (const [name, m] of series) {
    const color = PALETTE[i % PALETTE.length];
    let total = 0;
    const pts = xs.map((t) => { const v = m.get(t) || 0; total += v; return px(t).toFixed(1) + ',' + py(v).toFixed(1); });
    svg.append(el('svg:polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-series': name, 'data-total': total }));
    legend.append(el('span', { class: 'c' + (i % PALETTE.length), 'data-series': name, 'data-total': total, text: `${name} (${fmtNum(total)})` }));
    i++;
  }
  return [svg, legend];
}

function barChart(q, res) {
  const xi = colIndex(res, q.x), yi = colIndex(res, q.y);
  const rows = res.rows;
  const max = niceMax(Math.max(0, ...rows.map((r) => Number(r[yi] || 0))));
  const W = 640, rowH = 22, LBL = 250, VAL = 70;
  const H = rows.length * rowH + 6;
  const svg = el('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': q.title });
  rows.forEach((r, i) => {
    const label = String(r[xi]), v = Number(r[yi] || 0);
    const y = 3 + i * rowH;
    const w = Math.max(1, (W - LBL - VAL) * v / max);
    const short = label.length > 40 ? label.slice(0, 39) + '…' : label;
    const t = el('svg:text', { x: LBL - 6, y: y + 15, 'text-anchor': 'end', text: short });
    t.append(el('svg:title', { text: label }));
    svg.append(t);
    svg.append(el('svg:rect', { x: LBL, y: y + 3, width: w, height: rowH - 6, rx: 2, fill: PALETTE[0], 'data-label': label, 'data-value': v }));
    svg.append(el('svg:text', { class: 'bar-value', x: LBL + w + 4, y: y + 15, 'data-label': label, text: fmtNum(r[yi]) }));
  });
  return [svg];
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

function table(res) {
  const head = el('tr', {}, ...res.columns.map((c) => el('th', { class: isNumType(c.type) ? 'num' : '', title: c.type, text: c.name })));
  const body = el('tbody');
  for (const row of res.rows) {
    body.append(el('tr', {}, ...row.map((v, i) => el('td', {
      class: isNumType(res.columns[i].type) ? 'num' : '', 'data-col': res.columns[i].name, text: fmtCell(v, res.columns[i].type),
    }))));
  }
  return el('div', { class: 'tablewrap' }, el('table', {}, el('thead', {}, head), body));
}

function render(q, res) {
  if (q.chart !== 'stat' && res.rows.length === 0) return [el('div', { class: 'empty', text: 'No data in this range.' })];
  switch (q.chart) {
    case 'line': return lineChart(q, res);
    case 'bar': return [...barChart(q, res), table(res)];
    case 'stat': return statTiles(res);
    default: return [table(res)];
  }
}

// ---- panels ----

function buildPanels() {
  const main = $('panels');
  main.replaceChildren();
  const qs = [...meta.queries].sort((a, b) => {
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
  const extra = q.chart === 'table' ? { limit: 50 } : { limit: 10 };
  try {
    const res = await api('/api/query/' + encodeURIComponent(q.name) + '?' + queryParams(rng, extra));
    if (gen !== generation) return;
    body.replaceChildren(...render(q, res));
    panel.querySelector('.meta').textContent = `${res.rows.length} rows${res.truncated ? ' (truncated)' : ''} · ${Math.round(res.elapsed_ms)} ms`;
    panel.querySelector('.meta').title = res.sql;
    panel.dataset.rows = res.rows.length;
    panel.dataset.state = 'ok';
  } catch (e) {
    if (gen !== generation) return;
    body.replaceChildren(el('div', { class: 'error', text: e.message }));
    panel.dataset.state = 'error';
    throw e;
  }
}

async function loadFilters(rng) {
  const f = await api('/api/filters?' + new URLSearchParams({ from: rng.from, to: rng.to }));
  for (const [id, vals] of [['script', f.scripts], ['namespace', f.namespaces], ['worker_id', f.workers], ['colo', f.colos], ['outcome', f.outcomes]]) {
    const sel = $(id), keep = sel.value;
    sel.replaceChildren(el('option', { value: '', text: 'all' }));
    for (const v of vals) sel.append(el('option', { value: v, text: v === '' ? '(empty)' : v }));
    if (keep) ensureOption(sel, keep);
    sel.value = keep;
  }
}

async function refresh() {
  const gen = ++generation;
  const status = $('status');
  let rng;
  try {
    rng = currentRange();
  } catch (e) {
    status.textContent = e.message;
    status.className = 'error';
    return;
  }
  writeHash(rng);
  status.textContent = 'loading…';
  status.className = '';
  for (const p of document.querySelectorAll('#panels .panel')) p.dataset.state = 'loading';
  const jobs = [loadFilters(rng), ...meta.queries.map((q) => loadPanel(q, rng, gen))];
  const results = await Promise.allSettled(jobs);
  if (gen !== generation) return;
  const failed = results.filter((r) => r.status === 'rejected');
  const when = fmtTime(Math.floor(Date.now() / 1000));
  if (failed.length) {
    status.textContent = `${failed.length} of ${jobs.length} requests failed (${failed[0].reason.message}) · ${when}`;
    status.className = 'error';
  } else {
    status.textContent = `updated ${when} · ${fmtTime(rng.from)} – ${fmtTime(rng.to)}`;
    status.className = '';
  }
  document.body.dataset.loads = ++loads;
}

function schedule() {
  if (timer) clearInterval(timer);
  timer = null;
  const s = Number($('refresh').value);
  if (s > 0) timer = setInterval(() => { if (!document.hidden) refresh(); }, s * 1000);
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
    out.replaceChildren(el('div', { class: 'error', text: e.message }));
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
  $('sqlbox').hidden = meta.sql === false; // -dash.sql=false
  setRefreshValue(meta.refresh_s);
  readHash();
  buildPanels();
  $('range').addEventListener('change', () => {
    if ($('range').value === 'custom' && !$('from').value) {
      const r = Math.floor(Date.now() / 1000);
      $('from').value = toLocalInput(r - 3600);
      $('to').value = toLocalInput(r);
    }
    $('custom').hidden = $('range').value !== 'custom';
    refresh();
  });
  for (const id of ['script', 'namespace', 'worker_id', 'colo', 'outcome']) $(id).addEventListener('change', refresh);
  $('refresh').addEventListener('change', () => { schedule(); refresh(); });
  $('controls').addEventListener('submit', (e) => { e.preventDefault(); refresh(); });
  $('sqlform').addEventListener('submit', runSQL);
  $('sql').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) runSQL(e); });
  schedule();
  refresh();
}

document.addEventListener('DOMContentLoaded', main);
