// One asset: description, owner, schema, rows, partitions, freshness, last runs, checks, a sample of
// rows, upstream and downstream, each column's lineage on a click, and a button that runs it with everything downstream.

import { get, post, enc } from './api.js';
import { h, badge, stateBadge, assetLink, runLink, table, panel, stat, fmtNumber, fmtDuration, fmtTime, timeAgo, errorBox, showBanner } from './dom.js';
import { checksTable } from './runs.js';

export async function render(el, name) {
  const detail = await get(`/api/assets/${enc(name)}`);
  const a = detail.asset;
  // Rows and partitions of an asset that is not built yet are a 404 with advice: shown in place.
  const [rows, partitions] = await Promise.all([
    get(`/api/assets/${enc(name)}/rows?limit=20`).catch((e) => e),
    get(`/api/assets/${enc(name)}/partitions`).catch((e) => e),
  ]);
  const trigger = h('button', { class: 'primary', 'data-action': 'run-downstream', onclick: async () => {
    trigger.disabled = true;
    try {
      const { run_id } = await post('/api/runs', { select: `${name}+` });
      location.hash = `#/runs/${enc(run_id)}`;
    } catch (e) {
      showBanner(`Could not start the run: ${e.message}`);
      trigger.disabled = false;
    }
  } }, `Run ${name} and downstream`);
  // Clicking a column name of the schema shows where the column comes from and what reads it.
  const lineage = h('div', { 'data-column-lineage': '' });
  const steps = (title, list) => h('div', {},
    h('h3', {}, title),
    table(list, [
      { key: 'depth', num: true },
      { key: 'asset', render: (st) => assetLink(st.asset) },
      { key: 'column', render: (st) => h('span', { class: 'mono' }, st.column) },
      { key: 'transformations', label: 'how', render: (st) => st.transformations.join(', ') },
    ], { empty: 'Nothing.' }));
  const showLineage = async (column) => {
    lineage.replaceChildren(h('p', { class: 'muted' }, `Reading the lineage of ${column}…`));
    try {
      const l = await get(`/api/lineage/columns/${enc(name)}/${enc(column)}`);
      lineage.replaceChildren(panel(`Lineage of ${column}`,
        l.error ? h('p', { class: 'muted' }, l.error) : null,
        h('div', { class: 'grid two' }, steps('Computed from', l.upstream), steps('Read by', l.downstream))));
    } catch (e) {
      lineage.replaceChildren(errorBox('Column lineage unavailable', e));
    }
  };
  const links = (names) => (names.length ? h('div', { class: 'row' }, names.map((n) => assetLink(n))) : h('span', { class: 'muted' }, 'none'));
  el.append(
    h('div', { class: 'row' },
      h('h1', { 'data-title': name }, name, badge(a.layer), stateBadge(a.state)),
      h('span', { class: 'spacer' }), trigger),
    h('div', { class: 'grid stats' },
      stat('Rows', fmtNumber(a.rows)),
      stat('Last built', h('span', { title: fmtTime(a.last_success_at) }, timeAgo(a.last_success_at)), { text: true }),
      stat('Freshness', a.state, { text: true }),
      // An e-mail address breaks after its @, not inside a word.
      stat('Owner', a.owner ? a.owner.split(/(?<=@)/).flatMap((part, i) => (i ? [h('wbr'), part] : [part])) : '—', { text: true }),
      stat(a.kind === 'source' ? 'Kind' : 'Materialized', a.kind === 'source' ? 'source table' : a.materialized, { text: true }),
      stat('Failing checks', a.failing_checks.length)),
    h('div', { class: 'grid two' },
      panel('About',
        h('p', {}, a.description || h('span', { class: 'muted' }, 'No description. Add one in the properties file.')),
        h('dl', { class: 'kv' },
          h('dt', {}, 'SQL relation'), h('dd', { class: 'mono' }, a.relation),
          h('dt', {}, 'Upstream'), h('dd', {}, links(a.upstream)),
          h('dt', {}, 'Downstream'), h('dd', {}, links(a.downstream)),
          h('dt', {}, 'Rows written by the last success'), h('dd', {}, fmtNumber(a.last_rows_written)))),
      panel(`Schema (${detail.columns.length} columns)`, table(detail.columns, [
        { key: 'name', render: (c) => h('button', { class: 'link mono', 'data-column': c.name, title: 'Show this column\'s lineage', onclick: () => showLineage(c.name) }, c.name) },
        { key: 'type', render: (c) => h('span', { class: 'mono' }, c.type) },
        { key: 'nullable', render: (c) => (c.nullable ? 'yes' : 'no') },
      ], { empty: 'No table yet.' }))),
    lineage,
    h('div', { class: 'grid two' },
      panel('Last runs', table(detail.runs, [
        { key: 'run_id', label: 'run', render: (r) => runLink(r.run_id) },
        { key: 'status', render: (r) => badge(r.status) },
        { key: 'finished_at', label: 'finished', render: (r) => h('span', { title: fmtTime(r.finished_at) }, timeAgo(r.finished_at)) },
        { key: 'rows_out', label: 'rows out', num: true, render: (r) => (r.rows_out === null || r.rows_out === undefined ? '—' : fmtNumber(r.rows_out)) },
        { key: 'duration_ms', label: 'duration', num: true, render: (r) => fmtDuration(r.duration_ms) },
        { key: 'error', render: (r) => r.error || '' },
      ], { empty: 'Never run.' })),
      panel('Partitions', partitions instanceof Error
        ? errorBox('Partitions unavailable', partitions)
        : partitions.columns.length === 0
          ? h('p', { class: 'muted' }, 'Not partitioned.')
          : table(partitions.partitions, [...partitions.columns, { key: 'rows', num: true }]))),
    panel(`Checks (${detail.checks.length})`, checksTable(detail.checks, { asset: false })),
    panel(rows instanceof Error ? 'Sample rows' : `Sample rows (first ${rows.length} of ${fmtNumber(a.rows)})`,
      rows instanceof Error
        // Not built yet is a state, not a failure: say how to build it, quietly.
        ? (rows.status === 404 && a.state === 'never built' ? h('p', { class: 'muted' }, rows.message) : errorBox('No rows to show', rows))
        : table(rows, null, { empty: 'The table is empty.' })),
    detail.sql ? panel('Compiled SQL', h('pre', {}, detail.sql)) : null);
}
