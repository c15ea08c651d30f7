// peer5.fetch: window.fetch for pages written against fetch. A shareable
// GET resolves, as a native fetch does, once the headers are known (the
// manifest), to a Response shown as the browser shows a same-origin one
// (type "basic", the URL without its fragment, the origin's headers); its
// body streams the verified bytes in order. Anything else, or a resource
// the module does not share, goes to the native fetch taken when the
// client loaded.
import { nativeFetch } from './native.js';
import { sharedHeaders } from './response.js';
import { fetchVerifiedBlock } from './httpblock.js';

const state = new WeakMap();

// SharedResponse is a Response with what a constructed one lacks: the
// fetched URL, type "basic", and where its bytes came from.
class SharedResponse extends Response {
  constructor(job, body, headers, url, stats) {
    super(body, { status: 200, statusText: 'OK', headers });
    state.set(this, { job, headers, url, stats });
  }

  get url() { return state.get(this).url; }
  get type() { return 'basic'; }
  /** {bytesFromHttp, bytesFromPeers, peers}, as request.stats; final when the body has ended. */
  get stats() { return state.get(this).stats; }

  clone() {
    const s = state.get(this);
    return new SharedResponse(s.job, super.clone().body, s.headers, s.url, s.stats);
  }
}

// Reading a body that failed rejects with the failure itself (an abort's
// reason, say), as a native response's does, not Chromium's generic
// TypeError for a stream that errored.
for (const m of ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text']) {
  const read = Response.prototype[m];
  if (typeof read !== 'function') continue;
  Object.defineProperty(SharedResponse.prototype, m, {
    configurable: true, enumerable: true, writable: true,
    value: function () { return read.call(this).catch((e) => { throw state.get(this).job.failure || e; }); },
  });
}

// bodyStream gives a transfer's bytes in order, a block at a time: from
// the store while the download runs, then through the finished transfer's
// reader. A block the browser cannot read back comes from the origin again.
function bodyStream(job, url, stats) {
  let next = 0;
  // Counted apart too, as stats follow the transfer's own until it ends.
  const fromHttpAgain = (n) => { job.refetched += n; stats.bytesFromHttp += n; };
  return new ReadableStream({
    type: 'bytes',
    async pull(c) {
      for (;;) {
        if (job.failure) return c.error(job.failure);
        if (job.result) {
          if (next >= job.result.manifest.blocks.length) return c.close();
          const b = await job.result.read(next, job.ac.signal);
          if (b.fromHttp) fromHttpAgain(b.bytes.length);
          next++;
          return c.enqueue(b.bytes);
        }
        const store = job.store;
        if (store && store.has(next)) {
          let b = await store.read(next);
          if (!b && !job.result && !job.failure) {
            b = await fetchVerifiedBlock(url, store.manifest, next, job.ac.signal);
            fromHttpAgain(b.length);
            store.put(next, b); // held again, for the result and for peers
          }
          if (b && !job.result) {
            next++;
            return c.enqueue(b);
          }
          continue;
        }
        await new Promise((r) => { job.wake = r; });
      }
    },
    cancel(reason) { job.ac.abort(reason); },
  });
}

export function makeFetch(client) {
  return async function fetch(input, init) {
    const method = init && init.method !== undefined ? String(init.method) : input instanceof Request ? input.method : 'GET';
    // Only a GET is looked at: reading a Request with a body would use it up.
    if (method.toUpperCase() !== 'GET') return nativeFetch(input, init);
    const req = new Request(input, init); // the browser's own checks and URL resolution
    const u = !req.integrity && req.credentials !== 'include' && req.cache !== 'only-if-cached' &&
      client.shareable('GET', req.url, false, [...req.headers.keys()]);
    if (!u) return nativeFetch(input, init);
    const signal = req.signal;
    if (signal.aborted) throw signal.reason;
    const stats = { bytesFromHttp: 0, bytesFromPeers: 0, peers: 0 };
    const copy = (st) => Object.assign(stats, { bytesFromHttp: st.bytesFromHttp + job.refetched, bytesFromPeers: st.bytesFromPeers, peers: st.peers });
    const job = { ac: new AbortController(), store: null, result: null, failure: null, refetched: 0, wake() {} };
    signal.addEventListener('abort', () => job.ac.abort(signal.reason));
    let headers;
    const head = new Promise((resolve) => {
      const wake = () => { const w = job.wake; job.wake = () => {}; w(); };
      client.transfer(u, {
        onManifest: (m) => resolve((headers = [...sharedHeaders(m)])),
        onProgress: (st, store) => { copy(st); job.store = store; wake(); },
      }, job.ac.signal).then((r) => {
        if (r) {
          copy(r.stats);
          job.result = r;
        }
        resolve(null);
        wake();
      }, (err) => {
        // After the headers the body fails as a native one does.
        job.failure = job.ac.signal.aborted ? job.ac.signal.reason : new TypeError('network error: ' + (err && err.message));
        resolve(null);
        wake();
      });
    });
    await head;
    if (signal.aborted) throw signal.reason;
    if (headers) return new SharedResponse(job, bodyStream(job, u.href, stats), headers, u.href, stats);
    // Not shared, or failed before the headers: the native fetch tries its luck.
    return nativeFetch(input, init);
  };
}
