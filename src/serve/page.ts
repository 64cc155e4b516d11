/**
 * The live page `deimv2 serve` answers at `GET /`: one self-contained HTML document (inline CSS and
 * JS, no build step, no framework, nothing fetched from elsewhere). It shows a grid of the streams
 * of `GET /v1/streams`, each with its MJPEG view, state, FPS, frames, dropped frames, reconnections,
 * last error and live counts (polled every second), a form that adds a stream (`POST /v1/streams`:
 * id, source, lines and zones in the `--line`/`--zone` syntax, track) and a remove button per stream
 * (`DELETE /v1/streams/:id`). An API key typed into the key field is sent as
 * `Authorization: Bearer KEY` with every call (kept in sessionStorage,
 * never in the page's URL).
 *
 * Every string that comes from the API (ids, redacted sources, states, errors, line and zone and
 * class names) reaches the DOM through `textContent` or an attribute set by `setAttribute`, never
 * through `innerHTML`; ids in URLs go through `encodeURIComponent`.
 *
 * A browser keeps at most 6 HTTP/1.1 connections to one host, and each MJPEG view holds one open,
 * so the first MJPEG_VIEWS streams get an MJPEG view and the others a still (`frame.jpg`) reloaded
 * every second; otherwise the page's own polling would wait behind the video connections.
 */

const STYLE = `
:root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --fg: #1b1f24; --muted: #5b6470; --line: #d8dce2; --accent: #2563eb; }
@media (prefers-color-scheme: dark) { :root { --bg: #111418; --card: #1b2027; --fg: #e6e9ee; --muted: #9aa3ad; --line: #2e3540; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 10px 16px; border-bottom: 1px solid var(--line); background: var(--card); }
header h1 { font-size: 18px; margin: 0 12px 0 0; }
#health { color: var(--muted); }
#health.ok { color: #15803d; }
#health.bad { color: #b91c1c; }
main { padding: 16px; }
form#add { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; margin-bottom: 16px; padding: 12px; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
input, textarea, button { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 4px 6px; }
textarea { min-width: 260px; height: 2.2em; resize: vertical; }
input[name=source] { min-width: 320px; }
button { cursor: pointer; background: var(--accent); color: #fff; border: 0; padding: 5px 12px; }
button.remove { background: #b91c1c; padding: 2px 10px; }
#message { flex-basis: 100%; min-height: 1.2em; margin: 0; }
#message.error { color: #b91c1c; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 16px; }
.stream { background: var(--card); border: 1px solid var(--line); border-radius: 6px; overflow: hidden; }
.stream .head { display: flex; gap: 8px; align-items: center; padding: 6px 10px; }
.stream .id { font-weight: 600; flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.stream .view { display: block; width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #000; }
.stream .source, .stream .error { padding: 0 10px; font-size: 12px; color: var(--muted); word-break: break-all; }
.stream .error { color: #b91c1c; }
.stream .stats { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 6px 10px; font-variant-numeric: tabular-nums; }
.stream table { border-collapse: collapse; margin: 0 10px 10px; font-size: 12px; font-variant-numeric: tabular-nums; }
.stream td, .stream th { padding: 1px 8px 1px 0; text-align: left; }
.state { font-size: 12px; padding: 1px 8px; border-radius: 10px; background: var(--line); }
.state.running { background: #15803d; color: #fff; }
.state.starting, .state.reconnecting { background: #b45309; color: #fff; }
.state.failed { background: #b91c1c; color: #fff; }
#empty { color: var(--muted); }
`;

const SCRIPT = `
'use strict';
const MJPEG_VIEWS = 4;
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const cards = new Map();

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function apiKey() { return $('key').value.trim(); }

async function call(method, url, body) {
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.ok) return res.status === 204 ? null : res.json().catch(() => null);
  let detail = res.status + ' ' + res.statusText;
  try {
    const j = await res.json();
    const m = j && (j.error && (j.error.message || j.error.code || j.error) || j.message);
    if (m) detail = res.status + ': ' + (typeof m === 'string' ? m : JSON.stringify(m));
  } catch {}
  throw new Error(detail);
}

function say(text, isError) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
}

function streamUrl(id, what) { return '/v1/streams/' + encodeURIComponent(id) + '/' + what; }

function makeCard(s, index) {
  const card = el('section', 'stream');
  card.dataset.id = s.id;
  const head = el('div', 'head');
  const id = el('span', 'id', s.id);
  id.title = s.id;
  const state = el('span', 'state');
  const remove = el('button', 'remove', 'Remove');
  remove.type = 'button';
  remove.addEventListener('click', async () => {
    remove.disabled = true;
    try {
      await call('DELETE', '/v1/streams/' + encodeURIComponent(s.id));
      say('removed ' + s.id, false);
      refresh();
    } catch (e) {
      say('could not remove ' + s.id + ': ' + e.message, true);
    } finally {
      remove.disabled = false;
    }
  });
  head.append(id, state, remove);
  const view = el('img', 'view');
  view.alt = 'stream ' + s.id;
  const live = index < MJPEG_VIEWS;
  view.dataset.mode = live ? 'mjpeg' : 'still';
  view.setAttribute('src', live ? streamUrl(s.id, 'mjpeg') : streamUrl(s.id, 'frame.jpg') + '?t=' + Date.now());
  const source = el('div', 'source');
  const stats = el('div', 'stats');
  const fields = {};
  for (const [k, label] of [['fps', 'FPS'], ['frames', 'frames'], ['dropped', 'dropped'], ['reconnects', 'reconnects']]) {
    const span = el('span', 'stat');
    const v = el('b', 'value ' + k);
    span.append(label + ' ', v);
    stats.append(span);
    fields[k] = v;
  }
  const error = el('div', 'error');
  const counts = el('table', 'counts');
  card.append(head, view, source, stats, error, counts);
  return { card, state, view, source, fields, error, counts, sig: '' };
}

function fmt(n, digits) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** counts: { lines: [{ name, totalIn, totalOut, in, out }], zones: [{ name, maxOccupancy, visitors, dwell }] }. */
function countRows(counts) {
  const rows = [];
  if (!counts || typeof counts !== 'object') return rows;
  const lines = Array.isArray(counts.lines) ? counts.lines : Object.entries(counts.lines || {}).map(([name, c]) => ({ name, totalIn: c && c.in, totalOut: c && c.out }));
  for (const l of lines) rows.push(['line', l.name, 'in ' + fmt(l.totalIn, 0), 'out ' + fmt(l.totalOut, 0)]);
  const zones = Array.isArray(counts.zones) ? counts.zones : Object.entries(counts.zones || {}).map(([name, z]) => ({ name, count: z && z.count }));
  for (const z of zones) {
    // visitors (per class) counts every track that was inside; dwell lists only the newest of them.
    const visitors = z.visitors && typeof z.visitors === 'object' ? Object.values(z.visitors).reduce((a, n) => a + (typeof n === 'number' ? n : 0), 0) : Array.isArray(z.dwell) ? z.dwell.length : z.count;
    rows.push(['zone', z.name, 'tracks ' + fmt(visitors, 0), z.maxOccupancy === undefined ? '' : 'max ' + fmt(z.maxOccupancy, 0)]);
  }
  return rows;
}

function update(c, s) {
  c.state.textContent = String(s.state);
  c.state.className = 'state ' + String(s.state).replace(/[^a-z]/g, '');
  c.source.textContent = s.source === undefined ? '' : String(s.source);
  c.fields.fps.textContent = fmt(s.fps, 1);
  c.fields.frames.textContent = fmt(s.frames, 0);
  c.fields.dropped.textContent = fmt(s.dropped, 0);
  c.fields.reconnects.textContent = fmt(s.reconnects, 0);
  c.error.textContent = s.lastError ? 'last error: ' + (typeof s.lastError === 'string' ? s.lastError : s.lastError.message || JSON.stringify(s.lastError)) : '';
  const rows = countRows(s.counts);
  const sig = JSON.stringify(rows);
  if (sig !== c.sig) {
    c.sig = sig;
    c.counts.replaceChildren(...rows.map((r) => {
      const tr = el('tr');
      for (const cell of r) tr.append(el('td', '', cell));
      return tr;
    }));
  }
  if (c.view.dataset.mode === 'still') c.view.setAttribute('src', streamUrl(s.id, 'frame.jpg') + '?t=' + Date.now());
}

function render(streams) {
  const grid = $('grid');
  const seen = new Set();
  streams.forEach((s, i) => {
    const id = String(s.id);
    seen.add(id);
    let c = cards.get(id);
    if (!c) {
      c = makeCard({ ...s, id }, i);
      cards.set(id, c);
      grid.append(c.card);
    }
    update(c, { ...s, id });
  });
  for (const [id, c] of cards) {
    if (seen.has(id)) continue;
    c.view.removeAttribute('src'); // closes the MJPEG connection
    c.card.remove();
    cards.delete(id);
  }
  // The first MJPEG_VIEWS streams have the live views: a stream removed above hands its view on.
  streams.forEach((s, i) => {
    const c = cards.get(String(s.id));
    const mode = i < MJPEG_VIEWS ? 'mjpeg' : 'still';
    if (!c || c.view.dataset.mode === mode) return;
    c.view.dataset.mode = mode;
    c.view.setAttribute('src', mode === 'mjpeg' ? streamUrl(String(s.id), 'mjpeg') : streamUrl(String(s.id), 'frame.jpg') + '?t=' + Date.now());
  });
  $('empty').hidden = streams.length > 0;
}

let polling = false;
async function refresh() {
  if (polling) return;
  polling = true;
  try {
    const j = await call('GET', '/v1/streams');
    render(Array.isArray(j && j.streams) ? j.streams : []);
    $('health').textContent = 'connected';
    $('health').className = 'ok';
  } catch (e) {
    $('health').textContent = 'service unreachable: ' + e.message;
    $('health').className = 'bad';
  } finally {
    polling = false;
  }
}

$('add').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const id = f.elements.id.value.trim();
  const source = f.elements.source.value.trim();
  const list = (name) => f.elements[name].value.split(/[\\n;]+/).map((l) => l.trim()).filter(Boolean);
  const lines = list('lines');
  const zones = list('zones');
  const body = { id, source };
  if (lines.length) body.lines = lines;
  if (zones.length) body.zones = zones;
  if (f.elements.track.checked || lines.length || zones.length) body.track = true;
  const button = f.querySelector('button');
  button.disabled = true;
  try {
    await call('POST', '/v1/streams', body);
    say('added ' + id, false);
    f.elements.id.value = '';
    f.elements.source.value = '';
    f.elements.lines.value = '';
    f.elements.zones.value = '';
    refresh();
  } catch (e) {
    say('could not add ' + id + ': ' + e.message, true);
  } finally {
    button.disabled = false;
  }
});

$('auth').addEventListener('submit', (ev) => ev.preventDefault());
const keyField = $('key');
try { keyField.value = sessionStorage.getItem('deimv2-key') || ''; } catch {}
keyField.addEventListener('change', () => { try { sessionStorage.setItem('deimv2-key', keyField.value.trim()); } catch {} });

refresh();
setInterval(refresh, POLL_MS);
`;

export const PAGE_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>deimv2 serve</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>deimv2 serve</h1>
  <span id="health">connecting...</span>
  <form id="auth" style="margin-left:auto" autocomplete="off"><label>API key <input id="key" type="password" autocomplete="off" placeholder="only if the service has one"></label></form>
</header>
<main>
  <form id="add" autocomplete="off">
    <label>id <input name="id" required placeholder="gate"></label>
    <label>source <input name="source" required placeholder="rtsp://camera/stream"></label>
    <label>lines (x1,y1,x2,y2[:name], one a line) <textarea name="lines" placeholder="0,400,1280,400:gate"></textarea></label>
    <label>zones (x1,y1,x2,y2,x3,y3,...[:name]) <textarea name="zones" placeholder="100,100,600,100,600,500:dock"></textarea></label>
    <label>track <input name="track" type="checkbox" checked></label>
    <button type="submit">Add stream</button>
    <p id="message" role="status"></p>
  </form>
  <p id="empty" hidden>No streams yet: add one above.</p>
  <div id="grid"></div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
