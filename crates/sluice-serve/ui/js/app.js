// The single-page app: routes on the URL fragment (#/assets/NAME), one page module per route.
// A page renders into the view and may return a cleanup function (to stop its timers).

import { api, whenUnauthorized } from './api.js';
import * as signin from './signin.js';
import { h, errorBox, showBanner, hideBanner } from './dom.js';
import * as graph from './graph.js';
import * as asset from './asset.js';
import * as runs from './runs.js';
import * as checks from './checks.js';
import * as dashboards from './dashboards.js';
import * as queries from './queries.js';

const ROUTES = [
  [/^\/?$/, 'graph', () => graph.render],
  [/^\/assets\/(.+)$/, 'graph', () => asset.render],
  [/^\/runs\/?$/, 'runs', () => runs.renderList],
  [/^\/runs\/(.+)$/, 'runs', () => runs.renderRun],
  [/^\/checks\/?$/, 'checks', () => checks.render],
  [/^\/dashboards\/?$/, 'dashboards', () => dashboards.renderList],
  [/^\/dashboards\/(.+)$/, 'dashboards', () => dashboards.renderDashboard],
  [/^\/queries\/?$/, 'queries', () => queries.render],
];

const view = document.getElementById('view');
let cleanup = null;
let generation = 0;

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  hideBanner();
  const gen = ++generation;
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  if (path === '/signin') {
    document.querySelectorAll('[data-nav]').forEach((a) => a.classList.remove('active'));
    view.replaceChildren(signin.render(route));
    document.title = 'Sign in · Sluice';
    return;
  }
  const found = ROUTES.find(([re]) => re.test(path));
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', found && a.dataset.nav === found[1]));
  view.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  if (!found) {
    view.replaceChildren(errorBox('No such page', { message: `“${path}” is not a page of this UI.` }));
    return;
  }
  const [re, , page] = found;
  const params = path.match(re).slice(1);
  const el = h('div', {});
  try {
    const done = await page()(el, ...params);
    if (gen !== generation) {
      if (typeof done === 'function') done();
      return;
    }
    cleanup = typeof done === 'function' ? done : null;
    view.replaceChildren(el);
    const h1 = el.querySelector('h1');
    document.title = `${h1?.dataset.title || h1?.textContent || 'Sluice'} · Sluice`;
  } catch (e) {
    if (gen !== generation) return;
    if (e.status === 401) return; // the sign-in page is showing
    console.error(e);
    view.replaceChildren(errorBox('This page could not be loaded', e),
      h('p', {}, h('button', { onclick: route }, 'Try again')));
    showBanner(`The API answered with an error: ${e.message}`);
  }
}

async function health() {
  const el = document.getElementById('health');
  try {
    const body = await api('/api/health');
    el.textContent = `API ok · v${body.version}`;
    el.classList.remove('down');
  } catch (e) {
    el.textContent = 'API unreachable';
    el.classList.add('down');
  }
}

// Any 401 (no token, or one that expired or was revoked) shows the sign-in page, which returns to
// the page that was open once a token works.
whenUnauthorized((message) => {
  if (signin.showing()) return;
  generation++;
  if (cleanup) cleanup();
  cleanup = null;
  view.replaceChildren(signin.render(route, message));
  document.title = 'Sign in · Sluice';
});

window.addEventListener('hashchange', route);
route();
health();
setInterval(health, 15000);
