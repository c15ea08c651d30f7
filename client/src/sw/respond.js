// answer is the worker's response to a request it took (route.js): what
// the browser's HTTP cache holds fresh, else the verified bytes of the
// manifest's version, whole (200) or the range asked (206 with its
// Content-Range), streamed as blocks arrive; else, whenever the module
// does not share the resource or anything goes wrong before the response
// starts, the network's own answer to the very same request.
import { resolveRange, fresh } from './route.js';
import { sharedHeaders } from '../response.js';

/**
 * @param {FetchEvent} e
 * @param t the route's target: {url, range, navigate, media}
 * @param files the worker's Files
 * @returns {Promise<Response>}
 */
export async function answer(e, t, files) {
  const req = e.request;
  const client = e.clientId || e.resultingClientId || '';
  try {
    if (!t.range && req.cache === 'default') {
      const cached = await fromHTTPCache(t.url);
      if (cached) return cached;
    }
    files.listing(); // meanwhile
    files.early(t);
    const m = await files.manifest(t.url);
    // A page shared as a file would lose its client tag: pages go as they are.
    if (!m || (t.navigate && /html|xml/i.test(m.contentType || ''))) return fetch(req);
    const span = resolveRange(t.range, m.size);
    if (!span) return fetch(req);
    const f = files.file(m, t.url.pathname + t.url.search);
    const headers = new Headers();
    for (const [k, v] of sharedHeaders(m)) {
      try { headers.set(k, v); } catch { /* a value Headers refuses: left out */ }
    }
    const [start, end] = span;
    headers.set('content-length', String(end - start + 1));
    headers.set('accept-ranges', 'bytes');
    headers.delete('content-encoding');
    if (t.range) headers.set('content-range', `bytes ${start}-${end}/${m.size}`);
    return new Response(f.stream(start, end, t.media, client), {
      status: t.range ? 206 : 200, statusText: t.range ? 'Partial Content' : 'OK', headers,
    });
  } catch {
    return fetch(req);
  }
}

// fromHTTPCache is what the browser's HTTP cache holds for url, if it is
// fresh: a repeat view costs no request, as without the worker.
async function fromHTTPCache(url) {
  try {
    const res = await fetch(url.href, { cache: 'only-if-cached', mode: 'same-origin', credentials: 'same-origin' });
    if (res.status === 200 && fresh(res.headers, Date.now())) return res;
  } catch { /* not cached */ }
  return null;
}
