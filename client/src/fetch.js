// peer5.fetch: window.fetch for pages written against fetch. A shareable
// GET resolves to a Response built from the verified Blob; anything else
// (or a resource the module does not share) goes to the native fetch.

export function makeFetch(client) {
  return async function p2pFetch(input, init) {
    init = init || {};
    const method = init.method || 'GET';
    const plain = (typeof input === 'string' || input instanceof URL) && init.body == null && !init.integrity &&
      !(init.headers && [...new Headers(init.headers)].length);
    const u = plain && client.shareable(method, String(input), init.credentials === 'include', []);
    if (u) {
      let r = null;
      try {
        r = await client.transfer(u, { onManifest() {}, onProgress() {} }, init.signal);
      } catch (err) {
        if (err && err.name === 'AbortError') throw err;
      }
      if (r) {
        const m = r.manifest, headers = { 'content-type': m.contentType || 'application/octet-stream', 'content-length': String(m.size) };
        if (m.etag) headers.etag = m.etag;
        if (m.lastModified) headers['last-modified'] = m.lastModified;
        const res = new Response(r.blob, { status: 200, statusText: 'OK', headers });
        Object.defineProperty(res, 'stats', { value: { bytesFromHttp: r.stats.bytesFromHttp, bytesFromPeers: r.stats.bytesFromPeers, peers: r.stats.peers } });
        Object.defineProperty(res, 'url', { value: u.href });
        return res;
      }
    }
    return fetch(input, init);
  };
}
