// Runs: the history, and one run's page with a node timeline (Gantt), results, checks and log.

import { get, post, enc } from './api.js';
import { h, s, badge, assetLink, runLink, table, panel, stat, fmtDuration, fmtTime, fmtNumber, timeAgo, showBanner } from './dom.js';

const STATUS_COLORS = { success: '#2da44e', failed: '#cf222e', skipped: '#8c959f', running: '#1f6feb', cancelled: '#8c959f', abandoned: '#bc4c00' };

// Assets being built right now, by runs the server started and is still running.
export async function runningNodes() {
  const out = new Set();
  const runs = await get('/api/runs?limit=10');
  for (const r of runs.filter((r) => r.status === 'running')) {
    const detail = await get(`/api/runs/${enc(r.run_id)}`).catch(() => null);
    for (const n of detail?.running || []) out.add(n.node);
  }
  return out;
}

const runDuration = (r) => (r.finished_at ? new Date(r.finished_at) - new Date(r.started_at) : Date.now() - new Date(r.started_at));

export async function renderList(el) {
  const runs = await get('/api/runs?limit=100');
  el.append(
    h('h1', {}, 'Runs'),
    panel(null, table(runs, [
      { key: 'run_id', label: 'run', render: (r) => runLink(r.run_id) },
      { key: 'status', render: (r) => badge(r.status) },
      { key: 'command' },
      { key: 'selection', render: (r) => r.selection || h('span', { class: 'muted' }, 'everything') },
      { key: 'started_at', label: 'started', render: (r) => h('span', { title: fmtTime(r.started_at) }, timeAgo(r.started_at)) },
      { key: 'duration', num: true, render: (r) => fmtDuration(runDuration(r)) },
      { key: 'nodes', label: 'nodes ok / failed / skipped', num: true, render: (r) => `${r.nodes_ok} / ${r.nodes_failed} / ${r.nodes_skipped}` },
      { key: 'checks', label: 'checks pass / warn / fail', num: true, render: (r) => `${r.checks_passed} / ${r.checks_warned} / ${r.checks_failed}` },
    ], { empty: 'No runs yet. Start one from the Assets page.' })));
  const timer = setInterval(async () => {
    if (runs.some((r) => unfinished(r.status))) {
      const fresh = await get('/api/runs?limit=100').catch(() => null);
      if (fresh && JSON.stringify(fresh) !== JSON.stringify(runs)) window.dispatchEvent(new HashChangeEvent('hashchange'));
    }
  }, 1500);
  return () => clearInterval(timer);
}

// A queued run (requested from an API process, waiting for a scheduler) changes like a running one.
const unfinished = (status) => status === 'running' || status === 'queued';

export async function renderRun(el, id) {
  let detail = await get(`/api/runs/${enc(id)}`);
  const body = h('div', {});
  el.append(body);
  draw(body, detail);
  let timer = null;
  if (unfinished(detail.run.status)) {
    timer = setInterval(async () => {
      try {
        detail = await get(`/api/runs/${enc(id)}`);
        draw(body, detail);
        if (!unfinished(detail.run.status)) clearInterval(timer);
      } catch (e) {
        showBanner(`Lost the run's progress: ${e.message}`);
      }
    }, 700);
  }
  return () => clearInterval(timer);
}

function draw(el, { run, nodes, checks, running = [] }) {
  const rerun = h('button', { onclick: async () => {
    rerun.disabled = true;
    try {
      const { run_id } = await post('/api/runs', { select: run.selection });
      location.hash = `#/runs/${enc(run_id)}`;
    } catch (e) {
      showBanner(`Could not start the run: ${e.message}`);
      rerun.disabled = false;
    }
  } }, 'Run this selection again');
  const failedChecks = checks.filter((c) => c.status !== 'pass');
  // The run's totals are written when it ends; while it runs, count what has finished so far.
  const count = (list, status) => list.filter((x) => x.status === status).length;
  const tally = run.status === 'running'
    ? { ok: count(nodes, 'success'), failed: count(nodes, 'failed'), skipped: count(nodes, 'skipped'), pass: count(checks, 'pass'), warn: count(checks, 'warn'), fail: count(checks, 'fail') }
    : { ok: run.nodes_ok, failed: run.nodes_failed, skipped: run.nodes_skipped, pass: run.checks_passed, warn: run.checks_warned, fail: run.checks_failed };
  el.replaceChildren(
    h('div', { class: 'row' },
      h('h1', { 'data-run-status': run.status, 'data-title': `Run ${run.run_id}` }, 'Run ', h('span', { class: 'mono' }, run.run_id), badge(run.status)),
      h('span', { class: 'spacer' }), rerun),
    h('div', { class: 'grid stats' },
      stat('Selection', run.selection || 'everything', { text: true }),
      stat('Started', fmtTime(run.started_at), { text: true }),
      stat('Duration', fmtDuration(runDuration(run))),
      stat('Nodes ok / failed / skipped', `${tally.ok} / ${tally.failed} / ${tally.skipped}${running.length ? ` · ${running.length} running` : ''}`, { text: running.length > 0 }),
      stat('Checks pass / warn / fail', `${tally.pass} / ${tally.warn} / ${tally.fail}`)),
    panel('Timeline', gantt(run, nodes, running)),
    panel('Nodes', table(nodes, [
      { key: 'node', render: (n) => assetLink(n.node) },
      { key: 'kind' },
      { key: 'status', render: (n) => badge(n.status) },
      { key: 'attempts', num: true },
      { key: 'rows_in', label: 'rows in', num: true, render: (n) => orDash(n.rows_in) },
      { key: 'rows_out', label: 'rows out', num: true, render: (n) => orDash(n.rows_out) },
      { key: 'rows_quarantined', label: 'quarantined', num: true, render: (n) => orDash(n.rows_quarantined) },
      { key: 'duration_ms', label: 'duration', num: true, render: (n) => fmtDuration(n.duration_ms) },
      { key: 'error', render: (n) => (n.error ? h('span', { style: 'color:#cf222e' }, n.error) : '') },
    ], { empty: run.status === 'running' ? 'No node has finished yet.' : 'No nodes ran.', tall: true })),
    panel(`Checks (${checks.length}, ${failedChecks.length} not passing)`, checksTable(checks)),
    panel('Log', h('pre', { class: 'log' }, logLines(run, nodes, checks, running).join('\n'))));
}

// Checks, failing first. `asset: false` leaves out the asset column (on the asset's own page).
// Counts a node does not have (a model reads no "rows in") as a dash rather than `null`.
const orDash = (v) => (v === null || v === undefined ? '—' : fmtNumber(v));

export function checksTable(checks, { asset = true, tall = false } = {}) {
  const order = { fail: 0, warn: 1, pass: 2 };
  const sorted = [...checks].sort((a, b) => (order[a.status] ?? 1) - (order[b.status] ?? 1));
  return table(sorted, [
    asset ? { key: 'model', label: 'asset', render: (c) => assetLink(c.model) } : null,
    { key: 'check_name', label: 'check' },
    { key: 'status', render: (c) => badge(c.status) },
    { key: 'severity' },
    { key: 'failing_rows', label: 'failing rows', num: true },
    { key: 'message', render: (c) => c.message || '' },
    { key: 'sample', render: (c) => (Array.isArray(c.sample) && c.sample.length
      ? h('details', {}, h('summary', {}, `${c.sample.length} sample row(s)`), table(c.sample))
      : '') },
  ].filter(Boolean), { empty: 'No checks ran.', tall });
}

// Bars from each node's start to its end on one time axis; nodes still running reach to now.
function gantt(run, nodes, running) {
  const t0 = new Date(run.started_at).getTime();
  const now = Date.now();
  const items = [
    ...nodes.map((n) => ({ node: n.node, status: n.status, start: new Date(n.started_at).getTime(), end: new Date(n.finished_at).getTime(), ms: n.duration_ms, rows: n.rows_out })),
    ...running.map((n) => ({ node: n.node, status: 'running', start: new Date(n.started_at).getTime(), end: now, ms: now - new Date(n.started_at).getTime() })),
  ].sort((a, b) => a.start - b.start || a.node.localeCompare(b.node));
  if (!items.length) return h('p', { class: 'muted' }, run.status === 'running' ? 'Waiting for the first node…' : 'No nodes ran.');
  const t1 = Math.max(run.finished_at ? new Date(run.finished_at).getTime() : now, ...items.map((i) => i.end), t0 + 1);
  const span = t1 - t0;
  const LABEL = 220, W = 1000, ROW = 22, TOP = 22;
  const width = LABEL + W + 70, height = TOP + items.length * ROW + 8;
  const xOf = (t) => LABEL + ((t - t0) / span) * W;
  const svg = s('svg', { class: 'gantt', width: '100%', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'xMinYMin meet', 'data-bars': items.length });
  for (let i = 0; i <= 5; i++) {
    const x = LABEL + (W * i) / 5;
    svg.append(s('line', { class: 'axis', x1: x, x2: x, y1: TOP - 6, y2: height }));
    svg.append(s('text', { class: 'tick', x, y: 12, 'text-anchor': 'middle' }, fmtDuration((span * i) / 5)));
  }
  items.forEach((it, i) => {
    const y = TOP + i * ROW;
    const x = xOf(Math.max(it.start, t0));
    const w = Math.max(2, xOf(it.end) - x);
    svg.append(s('text', { x: 4, y: y + 14 }, it.node.length > 30 ? `${it.node.slice(0, 29)}…` : it.node));
    svg.append(s('rect', { x, y: y + 3, width: w, height: ROW - 7, rx: 3, fill: STATUS_COLORS[it.status] || '#8c959f', 'data-node': it.node },
      s('title', {}, `${it.node}: ${it.status}, ${fmtDuration(it.ms)}${it.rows !== undefined && it.rows !== null ? `, ${fmtNumber(it.rows)} rows` : ''}`)));
    svg.append(s('text', { class: 'tick', x: x + w + 4, y: y + 14 }, fmtDuration(it.ms)));
  });
  return svg;
}

// The run's events in time order, from what the state database recorded.
function logLines(run, nodes, checks, running) {
  const ev = [[run.started_at, `run ${run.run_id} started (${run.command}, selection: ${run.selection || 'everything'})`]];
  for (const n of nodes) {
    const rows = [n.rows_in !== null ? `${n.rows_in} in` : null, n.rows_out !== null ? `${n.rows_out} out` : null, n.rows_quarantined ? `${n.rows_quarantined} quarantined` : null].filter(Boolean).join(', ');
    if (n.status !== 'skipped') ev.push([n.started_at, `${n.node}: started`]);
    ev.push([n.finished_at, `${n.node}: ${n.status}${n.attempts > 1 ? ` after ${n.attempts} attempts` : ''} in ${fmtDuration(n.duration_ms)}${rows ? ` (${rows})` : ''}${n.version !== null && n.version !== undefined ? `, published version ${n.version}` : ''}${n.error ? `\n    error: ${n.error}` : ''}`]);
  }
  for (const c of checks) ev.push([c.checked_at, `check ${c.model}.${c.check_name}: ${c.status}${c.failing_rows ? ` (${c.failing_rows} failing rows)` : ''}${c.status !== 'pass' && c.message ? ` — ${c.message}` : ''}`]);
  for (const n of running) ev.push([n.started_at, `${n.node}: started (running)`]);
  if (run.finished_at) ev.push([run.finished_at, `run finished: ${run.status}`]);
  return ev.sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([t, m]) => `${(t || '').replace('T', ' ').slice(0, 23)}  ${m}`);
}

