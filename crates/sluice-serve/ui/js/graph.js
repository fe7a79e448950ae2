// The asset graph: every source table and model as a node, in one column per layer
// (bronze → silver → gold, left to right), coloured by state, with the DAG's edges.

import { get, post } from './api.js';
import { h, s, stat, fmtNumber, fmtCompact, timeAgo, showBanner } from './dom.js';
import { runningNodes } from './runs.js';

export const STATE_COLORS = {
  fresh: '#1a7f37', stale: '#d4a72c', failed: '#cf222e', running: '#1f6feb', 'never built': '#8c959f',
};
const LAYERS = ['bronze', 'silver', 'gold'];
const NODE_W = 200, NODE_H = 46, GAP_Y = 12, GAP_X = 70, GAP_SUB = 40, PAD = 20, HEAD = 34;

export async function render(el) {
  const runAll = h('button', { class: 'primary', onclick: async () => {
    runAll.disabled = true;
    try {
      const { run_id } = await post('/api/runs', { select: '' });
      location.hash = `#/runs/${encodeURIComponent(run_id)}`;
    } catch (e) {
      showBanner(`Could not start the run: ${e.message}`);
      runAll.disabled = false;
    }
  } }, 'Run everything');
  const body = h('div', {});
  el.append(h('div', { class: 'row' }, h('h1', {}, 'Assets'), h('span', { class: 'spacer' }), runAll), body);
  let anyRunning = await refresh(body);
  // States change while runs (started here, by the scheduler or by another process) build assets:
  // refresh often while something runs, now and then otherwise.
  let stopped = false, timer = null, idle = 0;
  const tick = async () => {
    if (stopped) return;
    idle += 1;
    if (anyRunning || idle >= 5) {
      idle = 0;
      anyRunning = await refresh(body).catch(() => anyRunning);
    }
    if (!stopped) timer = setTimeout(tick, 2000);
  };
  timer = setTimeout(tick, 2000);
  return () => { stopped = true; clearTimeout(timer); };
}

// Draws the figures and the graph into `body`; returns whether any asset is being built.
async function refresh(body) {
  const [assets, lineage, running] = await Promise.all([get('/api/assets'), get('/api/lineage'), runningNodes()]);
  for (const a of assets) if (running.has(a.name)) a.state = 'running';
  // Redraw only what changed, so a pointer resting on a node keeps its highlighted edges.
  const key = JSON.stringify([assets, lineage]);
  if (body.dataset.key === key) return running.size > 0;
  body.dataset.key = key;
  const counts = {};
  for (const a of assets) counts[a.state] = (counts[a.state] || 0) + 1;
  const wrap = body.querySelector('.graph-wrap');
  const scroll = wrap ? [wrap.scrollLeft, wrap.scrollTop] : null;
  body.replaceChildren(
    h('div', { class: 'grid stats' },
      stat('Assets', assets.length),
      stat('Fresh', counts.fresh || 0),
      stat('Stale', counts.stale || 0),
      stat('Failed', counts.failed || 0),
      stat('Running', counts.running || 0),
      stat('Rows served', fmtNumber(assets.reduce((n, a) => n + (a.rows || 0), 0)))),
    legend(),
    h('div', { class: 'graph-wrap' }, drawGraph(assets, lineage.edges)));
  if (scroll) [body.querySelector('.graph-wrap').scrollLeft, body.querySelector('.graph-wrap').scrollTop] = scroll;
  return running.size > 0;
}

function legend() {
  return h('div', { class: 'legend', style: 'margin: 0 0 8px' },
    Object.entries(STATE_COLORS).map(([k, c]) => h('span', {}, h('i', { style: `background:${c}` }), k)),
    h('span', { class: 'muted' }, 'Click an asset for its page; hover to follow its edges.'));
}

// One band per layer, left to right. A layer whose assets read each other (stg_customers → stg_orders →
// fct_orders in silver) is split into sub-columns by depth inside the layer, so every edge points right
// and none runs behind a node of its own column. Inside a column, nodes follow the average position of
// their parents, which keeps most edges short and uncrossed on graphs of this size.
export function layout(assets, edges) {
  const layers = [...LAYERS, ...new Set(assets.map((a) => a.layer).filter((l) => !LAYERS.includes(l)))]
    .filter((l) => LAYERS.includes(l) || assets.some((a) => a.layer === l));
  const byName = new Map(assets.map((a) => [a.name, a]));
  const parents = new Map(assets.map((a) => [a.name, []]));
  for (const e of edges) if (byName.has(e.from)) parents.get(e.to)?.push(e.from);
  // Depth inside the layer: 0 for an asset with no parent in its own layer.
  const depth = new Map();
  const depthOf = (name, seen = new Set()) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0; // a cycle cannot be built, but must not hang the page
    seen.add(name);
    const a = byName.get(name);
    const same = parents.get(name).filter((p) => byName.get(p).layer === a.layer);
    const d = same.length ? 1 + Math.max(...same.map((p) => depthOf(p, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  assets.forEach((a) => depthOf(a.name));
  const children = new Map(assets.map((a) => [a.name, []]));
  for (const [child, ps] of parents) for (const p of ps) children.get(p).push(child);
  const bands = [];
  const columns = [];
  let x = PAD + 10;
  const colX = [];
  for (const layer of layers) {
    const members = assets.filter((a) => a.layer === layer).sort((a, b) => a.name.localeCompare(b.name));
    const subs = Math.max(1, ...members.map((a) => depth.get(a.name) + 1));
    const band = { layer, x, width: subs * NODE_W + (subs - 1) * GAP_SUB, count: members.length };
    bands.push(band);
    for (let d = 0; d < subs; d++) {
      columns.push(members.filter((a) => depth.get(a.name) === d));
      colX.push(x + d * (NODE_W + GAP_SUB));
    }
    x += band.width + GAP_X;
  }
  // Order each column by the mean position of its neighbours: parents sweeping right, children
  // sweeping left, a few times over (a barycentre heuristic; enough for graphs of this size).
  const index = new Map();
  const reindex = (col) => col.forEach((a, i) => index.set(a.name, i));
  columns.forEach(reindex);
  const sortBy = (col, neighbours) => {
    const key = new Map(col.map((a) => {
      const is = neighbours.get(a.name).map((n) => index.get(n)).filter((i) => i !== undefined);
      return [a.name, is.length ? is.reduce((u, v) => u + v, 0) / is.length : index.get(a.name)];
    }));
    col.sort((a, b) => key.get(a.name) - key.get(b.name) || a.name.localeCompare(b.name));
    reindex(col);
  };
  for (let pass = 0; pass < 4; pass++) {
    for (let c = 1; c < columns.length; c++) sortBy(columns[c], parents);
    for (let c = columns.length - 2; c >= 0; c--) sortBy(columns[c], children);
  }
  for (let c = 1; c < columns.length; c++) sortBy(columns[c], parents);
  // Heights: the first column is stacked; every later node sits level with the mean of its parents
  // where the nodes above and below it leave room, so a chain reads as a straight line.
  const pos = new Map();
  const top = PAD + HEAD, step = NODE_H + GAP_Y;
  // The graph is as tall as its longest column: a node moves down only as far as the nodes below it
  // still fit.
  const rows = Math.max(1, ...columns.map((col) => col.length));
  columns.forEach((col, c) => {
    let next = top;
    for (const [i, a] of col.entries()) {
      const ys = parents.get(a.name).map((p) => pos.get(p)?.y).filter((y) => y !== undefined);
      const want = ys.length ? ys.reduce((u, v) => u + v, 0) / ys.length : top;
      const lowest = top + (rows - (col.length - i)) * step;
      const y = Math.min(lowest, Math.max(next, top + Math.round((want - top) / step) * step));
      pos.set(a.name, { x: colX[c], y, a });
      next = y + step;
    }
  });
  return { bands, columns, pos, width: x - GAP_X + PAD + 10 };
}

function drawGraph(assets, edges) {
  const { bands, columns, pos, width } = layout(assets, edges);
  const bottom = Math.max(PAD + HEAD + NODE_H, ...[...pos.values()].map((p) => p.y + NODE_H));
  const height = bottom + GAP_Y + PAD;
  // Drawn at its natural size, and scaled down (never up) to fit the window.
  const svg = s('svg', { class: 'graph', width, height, viewBox: `0 0 ${width} ${height}`, 'data-nodes': assets.length, 'data-edges': edges.length });
  for (const b of bands) {
    svg.append(s('rect', { class: 'col-bg', x: b.x - 10, y: PAD - 6, width: b.width + 20, height: height - PAD * 2 + 6, rx: 8 }));
    svg.append(s('text', { class: 'col-title', x: b.x, y: PAD + 14 }, `${b.layer} · ${b.count}`));
  }
  const edgeEls = [];
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    const path = s('path', { class: 'edge', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}`, 'data-from': e.from, 'data-to': e.to, 'marker-end': 'url(#arrow)' });
    edgeEls.push(path);
    svg.append(path);
  }
  svg.prepend(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 2, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#9aa7b5' }))));
  for (const { x, y, a } of pos.values()) {
    const color = STATE_COLORS[a.state] || STATE_COLORS['never built'];
    const name = a.name.length > 27 ? `${a.name.slice(0, 26)}…` : a.name;
    const subLine = (rows) => [a.kind === 'source' ? 'source' : a.materialized || 'model', a.rows !== null && a.rows !== undefined ? `${rows(a.rows)} rows` : null, a.state === 'fresh' ? null : a.state]
      .filter(Boolean).join(' · ');
    // Exact row counts where they fit in the box, rounded (10.0k) where they would not.
    const sub = subLine(fmtNumber).length <= 30 ? subLine(fmtNumber) : subLine(fmtCompact);
    const g = s('g', { class: 'node', 'data-asset': a.name, 'data-state': a.state, transform: `translate(${x},${y})`, tabindex: 0, role: 'link' },
      s('title', {}, `${a.name}\n${a.state}${a.last_success_at ? ` · built ${timeAgo(a.last_success_at)}` : ''}${a.failing_checks?.length ? `\nchecks: ${a.failing_checks.join(', ')}` : ''}`),
      s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 7 }),
      s('rect', { width: 6, height: NODE_H, rx: 3, fill: color }),
      s('text', { x: 14, y: 19 }, name),
      s('text', { class: 'sub', x: 14, y: 36 }, sub),
      a.failing_checks?.length ? s('circle', { cx: NODE_W - 12, cy: 12, r: 5, fill: a.failing_checks.some((c) => c.includes('(fail)')) ? '#cf222e' : '#d4a72c' }, s('title', {}, a.failing_checks.join('\n'))) : null);
    const open = () => { location.hash = `#/assets/${encodeURIComponent(a.name)}`; };
    g.addEventListener('click', open);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(); });
    g.addEventListener('mouseenter', () => {
      for (const p of edgeEls) p.classList.toggle('hi', p.dataset.from === a.name || p.dataset.to === a.name);
    });
    g.addEventListener('mouseleave', () => edgeEls.forEach((p) => p.classList.remove('hi')));
    svg.append(g);
  }
  return svg;
}
