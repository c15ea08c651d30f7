// Which requests the service worker answers itself, decided at once in
// the fetch event (respondWith must be called before it returns): a GET of
// this origin, of a path the module may share, for an image, a media
// element, a fetch/XHR or (with `paths`) a navigation, with nothing that
// makes it personal or conditional but a single byte Range. Everything
// else goes to the network untouched; so does whatever the manifest
// refuses, after it has been asked.
import { PERSONAL } from '../personal.js';
import { matcher } from '../auto.js';

// Scripts, styles, fonts and workers are small and on the page's critical
// path: a manifest request before each would only delay them.
const DESTINATIONS = new Set(['', 'image', 'video', 'audio']);

/**
 * parseRange reads a Range header the worker answers itself: one range of
 * bytes. null: no header; false: another form (several ranges, another
 * unit, malformed), which goes to the network as it is.
 * @returns {{first: number, last: number|null}|{suffix: number}|null|false}
 */
export function parseRange(h) {
  if (h === null || h === undefined) return null;
  const m = /^[ \t]*bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) return false;
  if (m[1] === '') return { suffix: +m[2] };
  return { first: +m[1], last: m[2] === '' ? null : +m[2] };
}

/**
 * The inclusive [start, end] a parsed range asks of size bytes (the whole
 * for no range), or null when it cannot be satisfied or is not valid:
 * the origin answers those (416, or the whole) itself.
 * @returns {[number, number]|null}
 */
export function resolveRange(r, size) {
  if (!r) return [0, size - 1];
  if ('suffix' in r) return r.suffix > 0 ? [Math.max(0, size - r.suffix), size - 1] : null;
  if (r.first >= size || (r.last !== null && r.last < r.first)) return null;
  return [r.first, r.last === null ? size - 1 : Math.min(r.last, size - 1)];
}

/**
 * Whether a response from the HTTP cache is fresh now (max-age, else
 * Expires, counted from its Date and Age), so that answering with it is
 * what the browser itself would do without asking the origin.
 */
export function fresh(headers, now) {
  const cc = (headers.get('cache-control') || '').toLowerCase();
  if (/(^|,)\s*(no-cache|no-store)/.test(cc)) return false;
  const date = Date.parse(headers.get('date') || '');
  if (Number.isNaN(date)) return false;
  const age = Math.max(0, (now - date) / 1000) + (+headers.get('age') || 0);
  const max = /(^|,)\s*max-age\s*=\s*(\d+)/.exec(cc);
  if (max) return age < +max[2];
  const expires = Date.parse(headers.get('expires') || '');
  return !Number.isNaN(expires) && (expires - date) / 1000 > age;
}

/**
 * Routes requests for one configuration ({prefix, paths, navigate}).
 * target(request) is what the worker needs to answer it, or null to let
 * it go to the network.
 */
export function router(cfg) {
  const match = matcher(cfg.paths || []);
  return function target(req) {
    // no-store and reload ask the network itself; no-store also marks the
    // client's own block requests (httpblock.js), which must not come back
    // here from a page carrying the swarm for this worker.
    if (req.method !== 'GET' || req.integrity || /^(only-if-cached|no-store|reload)$/.test(req.cache)) return null;
    const navigate = req.mode === 'navigate';
    if (navigate ? !cfg.navigate || req.destination !== 'document' : !DESTINATIONS.has(req.destination)) return null;
    let u;
    try { u = new URL(req.url); } catch { return null; }
    if (u.origin !== location.origin || u.username || u.password || u.pathname.startsWith(cfg.prefix)) return null;
    if (match && !match(u)) return null;
    for (const [name] of req.headers) if (name !== 'range' && PERSONAL.test(name)) return null;
    const range = parseRange(req.headers.get('range'));
    if (range === false) return null;
    u.hash = '';
    return { url: u, range, navigate, media: req.destination === 'video' || req.destination === 'audio' };
  };
}
