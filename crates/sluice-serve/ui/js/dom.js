// Small DOM and formatting helpers shared by the pages.

// h('div', {class: 'x', onclick: f}, child, 'text', [more]) builds an element.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'html') el.innerHTML = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG_NS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const badge = (text, cls = text) => h('span', { class: `badge ${String(cls).replace(/\s+/g, '-')}` }, text);
export const stateBadge = (state) => badge(state, state === 'never built' ? 'never' : state);
export const assetLink = (name) => h('a', { href: `#/assets/${encodeURIComponent(name)}` }, name);
export const runLink = (id) => h('a', { href: `#/runs/${encodeURIComponent(id)}`, class: 'mono' }, id);

export function fmtNumber(v, digits = 2) {
  if (v === null || v === undefined || v === '') return '—';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  return n.toLocaleString('en-US', { maximumFractionDigits: Number.isInteger(n) ? 0 : digits });
}

export function fmtCompact(n) {
  if (!Number.isFinite(n)) return '';
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(2)}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function timeAgo(iso) {
  if (!iso) return 'never';
  const secs = (Date.now() - new Date(iso).getTime()) / 1000;
  if (!Number.isFinite(secs)) return iso;
  if (secs < 60) return 'just now';
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

// A table of rows (objects). columns: [{key, label, num, render}] or column names; a column given by
// name is right-aligned (header too) when its values are numbers. `tall` lets it grow before it scrolls.
export function table(rows, columns, { empty = 'Nothing yet.', tall = false } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'muted' }, empty);
  const numeric = (key) => {
    const v = rows.map((r) => r[key]).find((x) => x !== null && x !== undefined);
    return typeof v === 'number';
  };
  const cols = (columns || Object.keys(rows[0])).map((c) => (typeof c === 'string' ? { key: c, label: c, num: numeric(c) } : c));
  const cell = (row, c) => {
    const v = c.render ? c.render(row) : row[c.key];
    if (v === null || v === undefined) return h('td', { class: c.num ? 'num' : '' }, h('span', { class: 'nulls' }, 'null'));
    if (v instanceof Node) return h('td', { class: c.num ? 'num' : '' }, v);
    if (typeof v === 'object') return h('td', { class: 'mono' }, JSON.stringify(v));
    return h('td', { class: c.num || typeof v === 'number' ? 'num' : '' }, typeof v === 'number' ? fmtNumber(v, 4) : String(v));
  };
  return h('div', { class: tall ? 'scroll tall' : 'scroll' },
    h('table', {},
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c.num ? 'num' : '' }, c.label ?? c.key)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => cell(r, c)))))));
}

export function errorBox(title, err) {
  return h('div', { class: 'error-box', 'data-error': 'true' },
    h('strong', {}, title),
    err && err.status ? `HTTP ${err.status}: ` : '', err ? err.message : '');
}

export const panel = (title, ...children) => h('section', { class: 'panel' }, title ? h('h2', {}, title) : null, ...children);
// A figure with its label; `text` sets long words (an e-mail address, a date) smaller than numbers.
export const stat = (label, value, { text = false } = {}) => h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: text ? 'value text' : 'value' }, value));

// A page-wide banner for failures a page cannot show in place (a failed action, the API down).
export function showBanner(message) {
  const banner = document.getElementById('banner');
  if (!banner) return;
  banner.replaceChildren(h('span', {}, message), h('button', { onclick: hideBanner }, 'Dismiss'));
  banner.hidden = false;
}
export function hideBanner() {
  const banner = document.getElementById('banner');
  if (banner) banner.hidden = true;
}
