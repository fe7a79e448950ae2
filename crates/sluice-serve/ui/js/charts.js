// Charts drawn as SVG: line, bar, stacked bar, single number and table. No charting library: the
// charts a dashboard needs are few, and drawing them here keeps the UI one embedded folder.

import { h, s, table, fmtNumber, fmtCompact } from './dom.js';

export const PALETTE = ['#1f6feb', '#2da44e', '#d4a72c', '#cf222e', '#8250df', '#1b7c83', '#e16f24', '#bf3989', '#57606a', '#6639ba'];
const W = 640, H = 250, BASE = { top: 10, right: 12, bottom: 34, left: 56 };

const list = (y) => (y === null || y === undefined ? [] : Array.isArray(y) ? y : [y]);

// Rows → x values (in query order) and series of values keyed by x.
export function pivot(chart, rows) {
  const ys = list(chart.y);
  const xs = [];
  const seen = new Set();
  const series = new Map();
  const key = (v) => (v === null || v === undefined ? '(null)' : String(v));
  for (const r of rows) {
    const x = key(r[chart.x]);
    if (!seen.has(x)) { seen.add(x); xs.push(x); }
    const entries = chart.series ? [[key(r[chart.series]), r[ys[0]]]] : ys.map((y) => [y, r[y]]);
    for (const [name, v] of entries) {
      if (!series.has(name)) series.set(name, new Map());
      const n = v === null || v === undefined ? null : Number(v);
      if (n !== null && Number.isFinite(n)) series.get(name).set(x, (series.get(name).get(x) || 0) + n);
    }
  }
  return { xs, series: [...series.entries()].map(([name, values], i) => ({ name, values, color: PALETTE[i % PALETTE.length] })) };
}

function niceTicks(min, max, count = 5) {
  if (min === max) { max = min + 1; }
  const step0 = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) || step0;
  const lo = Math.floor(min / step) * step, hi = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

// Draws `data` (the chart endpoint's answer) into `el`; returns how many values were drawn.
export function draw(el, chart, data) {
  const rows = data.rows || [];
  if (chart.type === 'number') return drawNumber(el, chart, rows);
  if (chart.type === 'table') {
    el.replaceChildren(table(rows, data.columns?.length ? data.columns : null, { empty: 'No rows in this range.' }));
    return rows.length;
  }
  if (!rows.length) {
    el.replaceChildren(h('p', { class: 'muted' }, 'No data in this time range.'));
    return 0;
  }
  const { xs, series } = pivot(chart, rows);
  const stacked = chart.type === 'stacked_bar';
  let lo = 0, hi = 0;
  xs.forEach((x) => {
    let pos = 0, neg = 0;
    for (const sr of series) {
      const v = sr.values.get(x);
      if (v === undefined) continue;
      if (stacked) { if (v >= 0) pos += v; else neg += v; } else { hi = Math.max(hi, v); lo = Math.min(lo, v); }
    }
    if (stacked) { hi = Math.max(hi, pos); lo = Math.min(lo, neg); }
  });
  const ticks = niceTicks(lo, hi);
  const y0 = ticks[0], y1 = ticks[ticks.length - 1];
  // Label as many x values as fit side by side (about 6.5 px a character at 11 px); a few long
  // labels (categories) that would not fit are all drawn, slanted, with room made below the axis.
  const chars = Math.min(14, Math.max(...xs.map((x) => x.length)));
  const fits = Math.max(1, Math.ceil((chars * 6.5 + 8) / ((W - BASE.left - BASE.right) / xs.length)));
  const rotate = fits > 1 && xs.length <= 24;
  const every = rotate ? 1 : fits;
  const M = { ...BASE, bottom: rotate ? 16 + chars * 4 : BASE.bottom };
  const iw = W - M.left - M.right, ih = H - M.top - M.bottom;
  const yOf = (v) => M.top + ih - ((v - y0) / (y1 - y0)) * ih;
  const band = iw / xs.length;
  const xOf = (i) => M.left + band * i + band / 2;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', role: 'img', 'aria-label': chart.title });
  for (const t of ticks) {
    svg.append(s('line', { class: 'grid-line', x1: M.left, x2: W - M.right, y1: yOf(t), y2: yOf(t) }));
    svg.append(s('text', { x: M.left - 6, y: yOf(t) + 4, 'text-anchor': 'end' }, fmtCompact(t)));
  }
  xs.forEach((x, i) => {
    if (i % every !== 0) return;
    const text = x.length > 14 ? `${x.slice(0, 13)}…` : x;
    svg.append(rotate
      ? s('text', { x: xOf(i), y: H - M.bottom + 12, 'text-anchor': 'end', transform: `rotate(-35 ${xOf(i)} ${H - M.bottom + 12})` }, text)
      : s('text', { x: xOf(i), y: H - M.bottom + 16, 'text-anchor': 'middle' }, text));
  });
  let drawn = 0;
  if (chart.type === 'line') {
    for (const sr of series) {
      let d = '';
      xs.forEach((x, i) => {
        const v = sr.values.get(x);
        if (v === undefined) return;
        d += `${d ? 'L' : 'M'}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
        drawn++;
      });
      svg.append(s('path', { d, fill: 'none', stroke: sr.color, 'stroke-width': 2, 'stroke-linejoin': 'round', 'data-series': sr.name }));
      if (xs.length <= 40) xs.forEach((x, i) => {
        const v = sr.values.get(x);
        if (v !== undefined) svg.append(s('circle', { cx: xOf(i), cy: yOf(v), r: 2.5, fill: sr.color }));
      });
    }
  } else {
    const inner = Math.max(1, band * 0.78);
    xs.forEach((x, i) => {
      let pos = 0, neg = 0;
      series.forEach((sr, si) => {
        const v = sr.values.get(x);
        if (v === undefined) return;
        let top, bottom, left, width;
        if (stacked) {
          const base = v >= 0 ? pos : neg;
          const next = base + v;
          if (v >= 0) pos = next; else neg = next;
          top = yOf(Math.max(base, next)); bottom = yOf(Math.min(base, next));
          left = xOf(i) - inner / 2; width = inner;
        } else {
          width = inner / series.length;
          left = xOf(i) - inner / 2 + si * width;
          top = yOf(Math.max(0, v)); bottom = yOf(Math.min(0, v));
        }
        svg.append(s('rect', { x: left, y: top, width: Math.max(0.5, width - (stacked ? 0 : 1)), height: Math.max(0.5, bottom - top), fill: sr.color, 'data-series': sr.name }));
        drawn++;
      });
    });
  }
  svg.append(s('line', { x1: M.left, x2: W - M.right, y1: yOf(Math.max(0, y0)), y2: yOf(Math.max(0, y0)), stroke: '#8c959f' }));
  hover(svg, xs, series, band, xOf, M);
  // (replaceChildren would turn a null into the text "null".)
  el.replaceChildren(...[svg, series.length > 1 || chart.series
    ? h('div', { class: 'legend-row' }, series.map((sr) => h('span', {}, h('i', { style: `background:${sr.color}` }), sr.name)))
    : null].filter(Boolean));
  return drawn;
}

function drawNumber(el, chart, rows) {
  const y = list(chart.y)[0];
  const v = rows[0]?.[y];
  el.replaceChildren(
    h('div', { class: 'big', 'data-value': v ?? '' }, v === null || v === undefined ? '—' : fmtNumber(v)),
    h('div', { class: 'muted small' }, `${chart.agg || 'sum'} of ${y}`));
  return v === null || v === undefined ? 0 : 1;
}

// A tooltip with every series' value at the x under the pointer.
function hover(svg, xs, series, band, xOf, M) {
  let tip = null;
  const cursor = s('line', { x1: 0, x2: 0, y1: M.top, y2: H - M.bottom, stroke: '#57606a', 'stroke-dasharray': '3 3', visibility: 'hidden' });
  svg.append(cursor);
  svg.addEventListener('mousemove', (ev) => {
    const box = svg.getBoundingClientRect();
    const x = ((ev.clientX - box.left) / box.width) * W;
    const i = Math.floor((x - M.left) / band);
    if (i < 0 || i >= xs.length) { svg.dispatchEvent(new Event('mouseleave')); return; }
    cursor.setAttribute('x1', xOf(i)); cursor.setAttribute('x2', xOf(i)); cursor.setAttribute('visibility', 'visible');
    if (!tip) { tip = h('div', { class: 'tip' }); document.body.append(tip); }
    const lines = series.filter((sr) => sr.values.has(xs[i])).map((sr) => `${sr.name}: ${fmtNumber(sr.values.get(xs[i]))}`);
    tip.textContent = [xs[i], ...lines.slice(0, 12)].join('\n');
    tip.style.left = `${Math.min(ev.clientX + 14, window.innerWidth - 220)}px`;
    tip.style.top = `${ev.clientY + 12}px`;
  });
  svg.addEventListener('mouseleave', () => {
    cursor.setAttribute('visibility', 'hidden');
    tip?.remove();
    tip = null;
  });
}
