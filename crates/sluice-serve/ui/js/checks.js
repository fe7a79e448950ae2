// Checks: the latest result of every check, failing ones first, with their failing rows' sample.

import { get } from './api.js';
import { h, stat, panel } from './dom.js';
import { checksTable } from './runs.js';

export async function render(el) {
  const { summary, checks } = await get('/api/checks');
  const notPassing = checks.filter((c) => c.status !== 'pass');
  el.append(
    h('h1', {}, 'Checks'),
    h('div', { class: 'grid stats' },
      stat('Checks', checks.length),
      stat('Pass', summary.pass),
      stat('Warn', summary.warn),
      stat('Fail', summary.fail)),
    panel(`Failing and warning (${notPassing.length})`, notPassing.length
      ? checksTable(notPassing)
      : h('p', { class: 'muted' }, 'Every check passed on its latest run.')),
    panel(`Passing (${checks.length - notPassing.length})`, checksTable(checks.filter((c) => c.status === 'pass'))));
}
