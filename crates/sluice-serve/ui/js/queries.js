// Queries: what runs now over HTTP and the PostgreSQL wire, with a Cancel button per query
// (POST /api/queries/{id}/cancel), refreshed every 2 seconds.

import { get, post } from './api.js';
import { h, stat, panel, table, fmtDuration, fmtCompact, fmtTime, showBanner } from './dom.js';

export async function render(el) {
  const body = h('div', {});
  el.append(h('h1', {}, 'Queries'), body);
  let stopped = false;
  async function refresh() {
    const { queries, limits } = await get('/api/queries');
    const cancel = (q) => h('button', {
      class: 'small',
      'data-cancel': String(q.id),
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await post(`/api/queries/${q.id}/cancel`, {});
        } catch (e) {
          showBanner(`Cancel failed: ${e.message}`);
        }
        refresh();
      },
    }, 'Cancel');
    body.replaceChildren(
      h('div', { class: 'grid stats' },
        stat('Running', queries.length),
        stat('Slots', limits.max_concurrent_queries),
        stat('Statement timeout', fmtDuration(limits.statement_timeout_ms), { text: true }),
        stat('Memory per query', `${fmtCompact(limits.query_memory_limit / 1048576)} MB`, { text: true })),
      panel(`Running now (${queries.length})`, table(queries, [
        { key: 'id', label: 'id', num: true },
        { key: 'protocol', label: 'protocol' },
        { key: 'peer', label: 'client' },
        { key: 'started_at', label: 'started', render: (q) => fmtTime(q.started_at) },
        { key: 'elapsed_ms', label: 'elapsed', num: true, render: (q) => fmtDuration(q.elapsed_ms) },
        { key: 'sql', label: 'SQL', render: (q) => h('code', { class: 'mono' }, q.sql.slice(0, 300)) },
        { key: 'cancel', label: '', render: cancel },
      ], { empty: 'No query is running.' })));
  }
  await refresh();
  const timer = setInterval(() => { if (!stopped) refresh().catch(() => {}); }, 2000);
  return () => { stopped = true; clearInterval(timer); };
}
