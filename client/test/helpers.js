// Helpers the Go e2e tests call in page.html. Each returns a Promise of a
// JSON-able summary, so a test compares results rather than driving events.
'use strict';

async function sha256hex(data) {
  const buf = data instanceof Blob ? await data.arrayBuffer() : data instanceof ArrayBuffer ? data : new TextEncoder().encode(String(data));
  return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)), (x) => x.toString(16).padStart(2, '0')).join('');
}

// trace runs one request with Ctor (XMLHttpRequest or peer5.Request) and
// records every event with the state seen then. opts.abortAt aborts at the
// first progress event with loaded >= abortAt; opts.timeout sets timeout.
function trace(Ctor, url, responseType, opts) {
  opts = opts || {};
  return new Promise((resolve) => {
    const x = new Ctor();
    const events = [], progress = [];
    let aborted = false;
    const types = ['readystatechange', 'loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
    for (const t of types) {
      x.addEventListener(t, (e) => {
        const last = events[events.length - 1];
        // Runs of progress and readyState 3 collapse into one 'loading':
        // how many there are depends on chunking, not on compatibility.
        let name = t === 'readystatechange' ? 'rs' + x.readyState : t;
        if (name === 'progress' || name === 'rs3') name = 'loading';
        if (name !== 'loading' || last !== name) events.push(name);
        if (t === 'progress') {
          progress.push(e.loaded);
          if (opts.abortAt && !aborted && e.loaded >= opts.abortAt) { aborted = true; x.abort(); }
        }
        if (t === 'loadend') {
          setTimeout(async () => {
            let r = null;
            try {
              const resp = x.response;
              if (resp instanceof Blob) r = { kind: 'blob', size: resp.size, type: resp.type, sha: await sha256hex(resp) };
              else if (resp instanceof ArrayBuffer) r = { kind: 'arraybuffer', size: resp.byteLength, sha: await sha256hex(resp) };
              else if (typeof resp === 'string') r = { kind: 'string', size: resp.length, sha: await sha256hex(resp) };
              else r = { kind: typeof resp, json: resp === null ? null : await sha256hex(JSON.stringify(resp)) };
            } catch (err) { r = { kind: 'error', message: String(err) }; }
            resolve({
              events, progress, status: x.status, statusText: x.statusText, readyState: x.readyState,
              contentType: x.getResponseHeader('Content-Type'), response: r,
              stats: x.stats || null, total: e.total,
            });
          }, 0);
        }
      });
    }
    x.open('GET', url);
    x.responseType = responseType;
    if (opts.timeout) x.timeout = opts.timeout;
    x.send();
  });
}

// waitPeers resolves once the page has n open peer connections.
function waitPeers(n) {
  return new Promise((resolve) => {
    const t = setInterval(() => { if (peer5.stats().peers >= n) { clearInterval(t); resolve(true); } }, 20);
  });
}
