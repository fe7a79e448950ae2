// Dashboards from dashboards/*.yml: the list, and one dashboard's charts with a time range and
// auto-refresh. Each chart loads on its own, so one failing query shows its error in its own card.

import { get, enc } from './api.js';
import { h, panel, errorBox, fmtTime } from './dom.js';
import { draw } from './charts.js';

export async function renderList(el) {
  const list = await get('/api/dashboards');
  el.append(h('h1', {}, 'Dashboards'));
  if (!list.length) {
    el.append(panel(null, h('p', {}, 'No dashboards yet. Add a file to ', h('code', {}, 'dashboards/'), ' (see docs/ui.md).')));
    return;
  }
  el.append(h('div', { class: 'grid three' }, list.map((d) => h('a', { class: 'panel', href: `#/dashboards/${enc(d.name)}`, style: 'display:block' },
    h('h2', {}, d.title),
    h('p', { class: 'muted' }, d.description || ''),
    h('span', { class: 'small muted' }, `${d.charts} chart(s)${d.refresh_seconds ? ` · refreshes every ${d.refresh_seconds}s` : ''}`)))));
}

const RANGES = ['7d', '30d', '90d', '365d', 'all'];

export async function renderDashboard(el, name) {
  const d = await get(`/api/dashboards/${enc(name)}`);
  let range = d.time_range?.default || 'all';
  const ranges = d.time_range ? [...new Set([...RANGES.slice(0, -1), range, 'all'])] : [];
  const updated = h('span', { class: 'muted small' });
  const seg = h('div', { class: 'seg', role: 'group', 'aria-label': 'time range' });
  const drawSeg = () => seg.replaceChildren(...ranges.map((r) => h('button', {
    class: r === range ? 'on' : '', 'data-range': r,
    onclick: () => { range = r; drawSeg(); load(); },
  }, r === 'all' ? 'All' : `Last ${r}`)));
  drawSeg();
  const auto = h('input', { type: 'checkbox', checked: Boolean(d.refresh_seconds), onchange: () => schedule() });
  const cards = d.charts.map((c, i) => {
    const body = h('div', { class: 'body' });
    const meta = h('span', { class: 'meta muted small' });
    const card = h('section', { class: `chart ${c.type}-chart`, 'data-chart': i, 'data-type': c.type, 'data-state': 'loading' },
      h('h2', {}, c.title, meta), c.description ? h('p', { class: 'muted small', style: 'margin:0 0 6px' }, c.description) : null, body);
    return { c, i, card, body, meta };
  });
  async function loadOne({ c, i, card, body, meta }) {
    card.classList.add('loading');
    try {
      const q = d.time_range ? `?range=${enc(range)}` : '';
      const data = await get(`/api/dashboards/${enc(name)}/charts/${i}${q}`);
      const points = draw(body, c, data);
      card.dataset.state = 'drawn';
      card.dataset.points = points;
      meta.textContent = data.range ? (data.range.range === 'all' ? 'all time' : `last ${data.range.range} of ${data.range.column}`) : 'all rows';
      meta.title = data.sql;
    } catch (e) {
      card.dataset.state = 'error';
      body.replaceChildren(errorBox('This chart could not be loaded', e));
      meta.textContent = '';
    } finally {
      card.classList.remove('loading');
    }
  }
  async function load() {
    await Promise.all(cards.map(loadOne));
    updated.textContent = `Updated ${fmtTime(new Date().toISOString())}`;
  }
  let timer = null;
  function schedule() {
    clearInterval(timer);
    timer = auto.checked && d.refresh_seconds ? setInterval(load, d.refresh_seconds * 1000) : null;
  }
  el.append(
    h('div', { class: 'row' },
      h('h1', {}, d.title),
      h('span', { class: 'spacer' }),
      d.time_range ? seg : null,
      d.refresh_seconds ? h('label', { class: 'small' }, auto, ` Auto-refresh every ${d.refresh}`) : null,
      h('button', { onclick: load }, 'Refresh'),
      updated),
    d.description ? h('p', { class: 'muted', style: 'margin-top:0' }, d.description) : null,
    h('div', { class: 'charts' }, cards.map((x) => x.card)));
  await load();
  schedule();
  return () => clearInterval(timer);
}
