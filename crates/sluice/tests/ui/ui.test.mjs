// Browser test of the Sluice web UI: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core against a served ShopFlow demo project. Run by crates/sluice/tests/ui.rs:
//
//   SLUICE_UI_TOKEN=slu_… node ui.test.mjs BASE_URL SCREENSHOT_DIR
//
// The server requires authentication: the test signs in on the UI's sign-in page with the token
// (an operator's), and calls the API with it.
//
// Every assertion compares what the page shows with what the JSON API answers, so a page that draws
// nothing, draws stale numbers or throws fails. Any console error or uncaught exception fails the test.
// Exits 0 when everything held, 1 with the failures otherwise.

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) {
  console.error('usage: node ui.test.mjs BASE_URL SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const TOKEN = process.env.SLUICE_UI_TOKEN;
if (!TOKEN) {
  console.error('SLUICE_UI_TOKEN is not set');
  process.exit(2);
}
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const SHOTS = ['signin', 'graph', 'asset', 'run', 'dashboard-finance', 'dashboard-executive', 'queries', 'failure'];
for (const name of SHOTS) rmSync(join(shots, `${name}.png`), { force: true }); // no stale pictures
const executablePath = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 20_000;

const failures = [];
const consoleErrors = [];
let step = 'start';
function check(ok, message) {
  if (!ok) failures.push(`[${step}] ${message}`);
  return ok;
}
function eq(actual, expected, what) {
  return check(JSON.stringify(actual) === JSON.stringify(expected),
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
const api = async (path, init) => {
  const r = await fetch(`${base}${path}`, { headers: { Accept: 'application/json', 'Content-Type': 'application/json', ...AUTH }, ...init });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
};
const num = (text) => Number(String(text).replace(/[,\s]/g, ''));

const profile = mkdtempSync(join(tmpdir(), 'sluice-ui-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1366, height: 768 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(TIMEOUT);
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`[${step}] console.error: ${m.text()}`); });
page.on('pageerror', (e) => consoleErrors.push(`[${step}] uncaught: ${e.message}`));
page.on('requestfailed', (r) => consoleErrors.push(`[${step}] request failed: ${r.url()} ${r.failure()?.errorText}`));

const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const go = async (hash) => { await page.goto(`${base}/#${hash}`); };

// Sign-in: without a token the UI shows the sign-in page (the API answers 401); a wrong token is
// refused there with the server's message; the right one opens the graph. (The browser logs the
// 401 responses: those console errors are expected here only.)
const unauthorizedLogged = (e) => /401|Unauthorized/.test(e);
async function signIn() {
  step = 'sign-in';
  const before = consoleErrors.length;
  const r = await fetch(`${base}/api/assets`, { headers: { Accept: 'application/json' } });
  eq(r.status, 401, 'the API without a token');
  await go('/');
  await page.waitForSelector('form#signin');
  check(await page.isVisible('#token'), 'no token field on the sign-in page');
  await page.fill('#token', 'slu_not_a_real_token');
  await page.click('form#signin button[type=submit]');
  await page.waitForSelector('#signin-error:has-text("invalid token")');
  check(await page.isVisible('form#signin'), 'a wrong token left the sign-in page');
  eq(await page.evaluate(() => sessionStorage.getItem('sluice.token')), null, 'a wrong token is not kept');
  await shot('signin');
  await page.fill('#token', TOKEN);
  await page.click('form#signin button[type=submit]');
  await page.waitForSelector('svg.graph g.node');
  eq(await page.evaluate(() => sessionStorage.getItem('sluice.token')), TOKEN, 'the token kept in sessionStorage');
  const unexpected = consoleErrors.splice(before).filter((e) => !unauthorizedLogged(e));
  consoleErrors.push(...unexpected);
}

// A token that stops working (here: replaced by a wrong one, as a revoked one would answer) sends
// the next page back to the sign-in page with the server's reason.
async function signedOut() {
  step = 'signed out';
  const before = consoleErrors.length;
  await page.evaluate(() => sessionStorage.setItem('sluice.token', 'slu_revoked_meanwhile'));
  await go('/runs');
  await page.waitForSelector('form#signin');
  await page.waitForSelector('#signin-error:has-text("invalid token")');
  await page.fill('#token', TOKEN);
  await page.click('form#signin button[type=submit]');
  await page.waitForSelector('h1:has-text("Runs")');
  const unexpected = consoleErrors.splice(before).filter((e) => !unauthorizedLogged(e));
  consoleErrors.push(...unexpected);
}

async function graph() {
  step = 'graph';
  const [assets, lineage] = await Promise.all([api('/api/assets'), api('/api/lineage')]);
  check(assets.length > 0, 'the API lists no assets');
  await go('/');
  await page.waitForSelector('svg.graph g.node');
  const shown = await page.$$eval('svg.graph g.node', (gs) => gs.map((g) => ({ name: g.dataset.asset, state: g.dataset.state, text: g.textContent })));
  eq(shown.map((n) => n.name).sort(), assets.map((a) => a.name).sort(), 'graph nodes vs /api/assets');
  for (const name of ['shop_app.orders', 'shop_app.order_items', 'clickstream.events', 'stg_orders', 'fct_orders',
    'daily_sales_by_category', 'daily_active_users']) {
    const n = shown.find((x) => x.name === name);
    if (check(n, `ShopFlow asset ${name} is not in the graph`)) check(n.text.includes(name), `node ${name} does not show its name`);
  }
  for (const a of assets) {
    const n = shown.find((x) => x.name === a.name);
    if (n) eq(n.state, a.state, `state of ${a.name}`);
  }
  const names = new Set(assets.map((a) => a.name));
  const expectedEdges = lineage.edges.filter((e) => names.has(e.from) && names.has(e.to)).map((e) => `${e.from}->${e.to}`).sort();
  check(expectedEdges.length > 0, 'the lineage has no edges');
  const edges = await page.$$eval('svg.graph path.edge', (ps) => ps.map((p) => `${p.dataset.from}->${p.dataset.to}`));
  eq(edges.sort(), expectedEdges, 'graph edges vs /api/lineage');
  // Layers left to right: every edge points right (no edge drawn backwards or inside one column).
  const boxes = Object.fromEntries(await page.$$eval('svg.graph g.node', (gs) => gs.map((g) => [g.dataset.asset, g.getBoundingClientRect().x])));
  for (const e of lineage.edges) {
    if (boxes[e.from] !== undefined && boxes[e.to] !== undefined) check(boxes[e.from] < boxes[e.to], `edge ${e.from} -> ${e.to} does not point right`);
  }
  await shot('graph');
}

async function assetPage() {
  step = 'asset page';
  const name = 'daily_sales_by_category';
  await go('/');
  await page.click(`svg.graph g.node[data-asset="${name}"]`);
  await page.waitForFunction((n) => location.hash === `#/assets/${n}`, name);
  await page.waitForSelector('h1[data-title]');
  const detail = await api(`/api/assets/${name}`);
  const [count] = await api('/api/sql?format=json', { method: 'POST', body: JSON.stringify({ sql: `select count(*) as n from ${detail.asset.relation}` }) });
  eq(detail.asset.rows, count.n, 'row count of /api/assets/NAME vs count(*)');
  eq(await page.textContent('h1[data-title]').then((t) => t.startsWith(name)), true, 'the page title names the asset');
  const rowsStat = await page.locator('.stat', { hasText: 'Rows' }).first().locator('.value').textContent();
  eq(num(rowsStat), detail.asset.rows, 'Rows shown on the asset page');
  const schema = page.locator('section.panel', { has: page.locator('h2', { hasText: /^Schema/ }) });
  const cols = await schema.locator('tbody tr td:first-child').allTextContents();
  check(detail.columns.length > 0, 'the API gives the asset no columns');
  eq(cols, detail.columns.map((c) => c.name), 'schema columns vs /api/assets/NAME');
  const types = await schema.locator('tbody tr td:nth-child(2)').allTextContents();
  eq(types, detail.columns.map((c) => c.type), 'schema types');
  const sample = page.locator('section.panel', { has: page.locator('h2', { hasText: /^Sample rows/ }) });
  const header = await sample.locator('thead th').allTextContents();
  eq(header, detail.columns.map((c) => c.name), 'sample rows header');
  eq(await sample.locator('tbody tr').count(), Math.min(20, detail.asset.rows), 'sample rows shown');
  const checks = page.locator('section.panel', { has: page.locator('h2', { hasText: /^Checks/ }) });
  eq(await checks.locator('tbody tr').count(), detail.checks.length, 'checks listed');
  eq(await page.locator('section.panel', { hasText: 'Upstream' }).locator('a', { hasText: 'fct_orders' }).count() > 0, true, 'upstream link to fct_orders');
  // A click on a column shows its lineage: the same steps as the API, linked to their assets.
  await schema.locator('button[data-column="net_revenue"]').click();
  const lineagePanel = page.locator('[data-column-lineage] section.panel', { has: page.locator('h2', { hasText: 'Lineage of net_revenue' }) });
  await lineagePanel.waitFor();
  const columnLineage = await api(`/api/lineage/columns/${name}/net_revenue`);
  check(columnLineage.upstream.some((st) => st.asset === 'fct_orders' && st.column === 'net_amount'), 'the API traces net_revenue to fct_orders.net_amount');
  const upstreamShown = lineagePanel.locator('div', { has: page.locator('h3', { hasText: 'Computed from' }) }).locator('tbody tr');
  eq(await upstreamShown.count(), columnLineage.upstream.length, 'upstream steps shown vs /api/lineage/columns');
  const firstRow = await upstreamShown.first().locator('td').allTextContents();
  const first = columnLineage.upstream[0];
  eq(firstRow.slice(1), [first.asset, first.column, first.transformations.join(', ')], 'first upstream step');
  await shot('asset');
}

async function runPages() {
  step = 'runs';
  const runs = await api('/api/runs?limit=100');
  check(runs.length > 0, 'no runs in /api/runs');
  await go('/runs');
  await page.waitForSelector('table tbody tr');
  eq(await page.locator('tbody tr').count(), runs.length, 'rows of the runs list');
  const id = runs[runs.length - 1].run_id; // the demo's full run
  await page.click(`a[href="#/runs/${id}"]`);
  await page.waitForSelector('h1[data-run-status]');
  step = 'run page';
  const detail = await api(`/api/runs/${id}`);
  eq(await page.getAttribute('h1[data-run-status]', 'data-run-status'), detail.run.status, 'run status');
  check(detail.nodes.length > 0, 'the run has no nodes');
  eq(await page.getAttribute('svg.gantt', 'data-bars'), String(detail.nodes.length), 'timeline bars');
  const nodesPanel = page.locator('section.panel', { has: page.locator('h2', { hasText: /^Nodes/ }) });
  const listed = await nodesPanel.locator('tbody tr td:first-child').allTextContents();
  eq(listed.sort(), detail.nodes.map((n) => n.node).sort(), 'nodes listed on the run page');
  const bars = await page.$$eval('svg.gantt rect[data-node]', (rs) => rs.map((r) => r.dataset.node));
  eq(bars.sort(), detail.nodes.map((n) => n.node).sort(), 'timeline bars per node');
  await shot('run');
}

async function triggerRun() {
  step = 'trigger a run';
  const name = 'daily_sales_by_category';
  await go(`/assets/${name}`);
  await page.click('button[data-action="run-downstream"]');
  await page.waitForFunction(() => /^#\/runs\/.+/.test(location.hash));
  const id = decodeURIComponent(await page.evaluate(() => location.hash.replace('#/runs/', '')));
  await page.waitForSelector('h1[data-run-status="success"], h1[data-run-status="failed"]', { timeout: 120_000 });
  const detail = await api(`/api/runs/${id}`);
  eq(detail.run.status, 'success', 'status of the triggered run');
  eq(detail.run.selection, `${name}+`, 'selection of the triggered run');
  eq(await page.getAttribute('h1[data-run-status]', 'data-run-status'), 'success', 'the run page shows the run finished');
  const listed = await page.locator('section.panel', { has: page.locator('h2', { hasText: /^Nodes/ }) }).locator('tbody tr td:first-child').allTextContents();
  check(listed.includes(name), `the triggered run's page does not list ${name}: ${listed}`);
}

// What a chart should draw for the chart endpoint's answer, counted independently of charts.js.
function expectedPoints(chart, data) {
  const ys = Array.isArray(chart.y) ? chart.y : chart.y ? [chart.y] : [];
  const rows = data.rows;
  if (chart.type === 'number') return rows[0]?.[ys[0]] == null ? 0 : 1;
  if (chart.type === 'table') return rows.length;
  const cols = chart.series ? [ys[0]] : ys;
  let n = 0;
  for (const r of rows) for (const y of cols) if (r[y] !== null && r[y] !== undefined) n++;
  return n;
}

async function dashboard(name, minCharts) {
  step = `dashboard ${name}`;
  const d = await api(`/api/dashboards/${name}`);
  check(d.charts.length >= minCharts, `${name} has ${d.charts.length} charts`);
  await go('/dashboards');
  await page.click(`a[href="#/dashboards/${name}"]`);
  await page.waitForFunction((count) => document.querySelectorAll('section.chart[data-state="drawn"], section.chart[data-state="error"]').length === count, d.charts.length);
  const range = d.time_range ? d.time_range.default : null;
  for (const [i, chart] of d.charts.entries()) {
    const what = `${name} chart ${i} (${chart.title}, ${chart.type})`;
    const card = page.locator(`section.chart[data-chart="${i}"]`);
    if (!eq(await card.getAttribute('data-state'), 'drawn', `${what} state`)) continue;
    const data = await api(`/api/dashboards/${name}/charts/${i}${range ? `?range=${range}` : ''}`);
    check(data.rows.length > 0, `${what}: the query returned no rows`);
    const want = expectedPoints(chart, data);
    check(want > 0, `${what}: nothing to draw`);
    eq(Number(await card.getAttribute('data-points')), want, `${what} points reported`);
    if (chart.type === 'number') {
      const shown = await card.locator('.big').textContent();
      const v = data.rows[0][Array.isArray(chart.y) ? chart.y[0] : chart.y];
      check(Math.abs(num(shown) - v) < 0.01, `${what}: shows ${shown}, the query says ${v}`);
    } else if (chart.type === 'table') {
      eq(await card.locator('tbody tr').count(), data.rows.length, `${what} table rows`);
    } else if (chart.type === 'line') {
      const vertices = await card.locator('svg path[data-series]').evaluateAll((ps) => ps.reduce((n, p) => n + (p.getAttribute('d').match(/[ML]/g) || []).length, 0));
      eq(vertices, want, `${what} line vertices in the <svg>`);
    } else {
      eq(await card.locator('svg rect[data-series]').count(), want, `${what} bars in the <svg>`);
    }
  }
  await shot(`dashboard-${name}`);
}

async function checksPage() {
  step = 'checks';
  const { summary, checks } = await api('/api/checks');
  await go('/checks');
  await page.waitForSelector('h1');
  const figure = async (label) => num(await page.locator('.stat', { has: page.locator('.label', { hasText: new RegExp(`^${label}$`) }) }).locator('.value').textContent());
  eq(await figure('Checks'), checks.length, 'checks count');
  eq(await figure('Warn'), summary.warn, 'warn count');
  eq(await page.locator('section.panel > .scroll > table > tbody > tr').count(), checks.length, 'check rows');
  eq(await page.locator('section.panel > .scroll > table > tbody > tr', { has: page.locator('.badge.warn') }).count(), summary.warn, 'warning rows');
}

// Queries: a long query started through the API is listed, and its Cancel button stops it (its
// client gets a 503 saying so, and the list empties).
async function queriesPage() {
  step = 'queries';
  const endless = 'select sum(a.v * b.v) from generate_series(1, 200000) as a(v) cross join generate_series(1, 200000) as b(v)';
  const running = fetch(`${base}/api/sql`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...AUTH }, body: JSON.stringify({ sql: endless }),
  }).then(async (r) => ({ status: r.status, text: await r.text() }));
  await go('/queries');
  await page.waitForSelector('h1');
  const button = page.locator('button[data-cancel]');
  await button.first().waitFor();
  const listed = await page.locator('section.panel tbody tr').first().textContent();
  check(listed.includes('generate_series'), `the running query is listed with its SQL: ${listed}`);
  await shot('queries');
  await button.first().click();
  const answer = await running;
  eq(answer.status, 503, 'status of the cancelled query');
  check(answer.text.includes('canceling statement'), `the cancelled query's answer: ${answer.text}`);
  await page.waitForSelector('text=No query is running.');
  const { queries } = await api('/api/queries');
  eq(queries.length, 0, 'running queries after the cancel');
}

// An API error is shown in place, with the server's message, and a banner; nothing is left blank.
// (The browser logs the 404 and app.js the error: those console errors are expected here only.)
async function errorPage() {
  step = 'error page';
  const before = consoleErrors.length;
  await go('/assets/no_such_asset');
  await page.waitForSelector('[data-error]');
  const text = await page.textContent('[data-error]');
  check(text.includes('404') && text.includes('no_such_asset'), `the error box says: ${text}`);
  check(await page.isVisible('#banner'), 'no banner for the failed page');
  const unexpected = consoleErrors.splice(before).filter((e) => !/404|no_such_asset/.test(e));
  consoleErrors.push(...unexpected);
  await go('/');
  await page.waitForSelector('svg.graph g.node');
  check(await page.isHidden('#banner'), 'the banner stays after leaving the failed page');
}

let crashed = null;
try {
  await signIn();
  await graph();
  await assetPage();
  await runPages();
  await checksPage();
  await queriesPage();
  await dashboard('finance', 5);
  await dashboard('executive', 3);
  await triggerRun();
  await errorPage();
  await signedOut();
} catch (e) {
  crashed = `[${step}] ${e.stack || e}`;
  await shot('failure').catch(() => {});
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

const all = [...(crashed ? [crashed] : []), ...failures, ...consoleErrors];
if (all.length) {
  console.error(`UI test FAILED (${all.length} problem(s)); screenshots in ${shots}`);
  for (const f of all) console.error(`  - ${f}`);
  process.exit(1);
}
console.log(`UI test passed; screenshots in ${shots}`);
