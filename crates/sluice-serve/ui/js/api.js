// Calls to the JSON API. Every failure becomes an ApiError carrying the status and the server's
// message, so pages can show what went wrong instead of a blank screen.

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

// The API token of this tab (docs/security.md): kept in sessionStorage, so it is gone when the tab
// closes, and sent as `Authorization: Bearer` on every call. A 401 shows the sign-in page.
const TOKEN_KEY = 'sluice.token';
export const token = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t) => sessionStorage.setItem(TOKEN_KEY, t);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

let onUnauthorized = () => {};
// Called with the server's message whenever the API answers 401.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function api(path, options = {}) {
  let response;
  const t = token();
  try {
    response = await fetch(path, {
      ...options,
      headers: {
        Accept: 'application/json',
        ...(options.body ? { 'Content-Type': 'application/json' } : {}),
        ...(t ? { Authorization: `Bearer ${t}` } : {}),
      },
    });
  } catch (e) {
    throw new ApiError(0, `cannot reach the Sluice server (${e.message})`, path);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = (body && body.error) || text.slice(0, 300) || response.statusText;
    if (response.status === 401) onUnauthorized(message);
    throw new ApiError(response.status, message, path);
  }
  if (body === null && text) throw new ApiError(response.status, 'the server sent a response that is not JSON', path);
  return body;
}

export const get = (path) => api(path);
export const post = (path, body) => api(path, { method: 'POST', body: JSON.stringify(body) });

// POST /api/sql, JSON rows.
export const sql = (query) => post('/api/sql?format=json', { sql: query });

export const enc = encodeURIComponent;
