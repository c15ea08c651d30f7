// Requests as pages make them with jQuery and axios, summarised as what
// the page would see: status, data, the headers (Date aside), errors. The
// Go test runs each set natively and after
// window.XMLHttpRequest = peer5.Request and compares the summaries.
'use strict';

const NativeXHR = window.XMLHttpRequest;

// summary keeps what a page reads of a response; data is hashed when big.
async function summary(o) {
  const out = {};
  for (const [k, v] of Object.entries(o)) {
    if (v instanceof ArrayBuffer) out[k] = { arraybuffer: v.byteLength, sha: await sha256hex(v) };
    else if (typeof v === 'string' && v.length > 200) out[k] = { text: v.length, sha: await sha256hex(v) };
    else if (v && typeof v === 'object' && JSON.stringify(v).length > 200) out[k] = { json: await sha256hex(JSON.stringify(v)) };
    else out[k] = v === undefined ? null : v;
  }
  return out;
}

const dateless = (h) => String(h || '').replace(/^date: .*$/im, 'date: <date>');

// withXHR runs f with window.XMLHttpRequest set to X, restoring it after.
async function withXHR(X, f) {
  window.XMLHttpRequest = X;
  try {
    return await f();
  } finally {
    window.XMLHttpRequest = NativeXHR;
  }
}

function jq(settings) {
  return new Promise((resolve) => {
    $.ajax(settings).then(
      (data, textStatus, x) => resolve(summary({ ok: true, status: x.status, statusText: x.statusText, textStatus, data, headers: dateless(x.getAllResponseHeaders()), type: x.getResponseHeader('Content-Type') })),
      (x, textStatus, error) => resolve(summary({ ok: false, status: x.status, statusText: x.statusText, textStatus, error, responseText: x.responseText, headers: dateless(x.getAllResponseHeaders()) })),
    );
  });
}

function ax(config) {
  return axios.request(config).then(
    (r) => summary({ ok: true, status: r.status, statusText: r.statusText, data: r.data, headers: dateless(Object.entries(r.headers.toJSON()).sort().map(([k, v]) => `${k}: ${v}`).join('\n')) }),
    (e) => summary({ ok: false, message: e.message, code: e.code, status: e.response && e.response.status, data: e.response && e.response.data }),
  );
}

// The requests of the test, by library: a POST, a 404, a small JSON file
// (too small to share), a big JSON file and a big binary file (shared).
const cases = {
  jquery: {
    post: () => jq({ url: '/api/echo', method: 'POST', data: { a: 1 } }),
    missing: () => jq({ url: '/files/missing.json' }),
    small: () => jq({ url: '/data/small.json' }),
    big: () => jq({ url: '/data/big.json' }),
    binary: () => jq({ url: '/files/demo.bin', xhrFields: { responseType: 'arraybuffer' }, dataType: 'binary' }),
  },
  axios: {
    post: () => ax({ url: '/api/echo', method: 'post', data: { a: 1 } }),
    missing: () => ax({ url: '/files/missing.json' }),
    small: () => ax({ url: '/data/small.json' }),
    big: () => ax({ url: '/data/big.json' }),
    binary: () => ax({ url: '/files/demo.bin', responseType: 'arraybuffer' }),
  },
};

/**
 * runLibrary runs a library's cases (names) with the native
 * XMLHttpRequest (swap false) or with peer5.Request in its place, and
 * resolves to {name: summary}, each shared URL's peer5.stats included.
 */
async function runLibrary(lib, names, swap) {
  const out = {};
  for (const n of names) {
    out[n] = await withXHR(swap ? peer5.Request : NativeXHR, cases[lib][n]);
  }
  return out;
}
