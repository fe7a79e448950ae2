// The sign-in page: asks for an API token (`sluice auth token create`), checks it against the API,
// keeps it in this tab's sessionStorage and goes back to the page that asked for it.

import { h } from './dom.js';
import { api, setToken, clearToken, token } from './api.js';

let current = null;

export const showing = () => current !== null && current.isConnected;

export function render(onSignedIn, reason) {
  const input = h('input', {
    id: 'token', type: 'password', name: 'token', autocomplete: 'current-password',
    placeholder: 'slu_…', required: true, spellcheck: 'false',
  });
  const status = h('p', { class: 'signin-error', role: 'alert', id: 'signin-error' },
    reason && token() ? reason : '');
  const form = h('form', { class: 'signin', id: 'signin' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'This Sluice server requires an API token. Make one with ',
      h('code', {}, 'sluice auth token create --user NAME'), '.'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    try {
      await api('/api/assets');
    } catch (e) {
      if (e.status === 401) clearToken();
      status.textContent = e.status === 401 ? `Not signed in: ${e.message}` : e.message;
      return;
    }
    current = null;
    if (location.hash === '#/signin') location.hash = '#/';
    else onSignedIn();
  });
  current = form;
  setTimeout(() => input.focus(), 0);
  return form;
}
