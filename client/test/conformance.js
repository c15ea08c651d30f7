// XMLHttpRequest conformance of peer5.Request (and fetch of peer5.fetch).
//
// Each scenario runs twice in this page: with the native XMLHttpRequest and
// fetch, then with peer5.Request and peer5.fetch. Whatever a page could
// observe (events with readyState, loaded, total; properties at each
// state; exceptions and their types; headers; decoded text) is recorded
// as labelled values, and the two records are compared label by label.
// Scenarios follow the WHATWG XMLHttpRequest standard and the kind of
// checks in web-platform-tests' xhr/ folder.
//
// Values that depend on timing, not on conformance, are normalised: how
// many progress/readystatechange(3) pairs a download makes, the bytes a
// progress event reports mid-way, the Date header's value, exception
// messages (each engine words its own).
'use strict';

const Native = window.NativeXHR;
const nativeFetch = window.nativeFetch;
const EVENTS = ['readystatechange', 'loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
const UPLOAD_EVENTS = ['loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
const CONSTANTS = ['UNSENT', 'OPENED', 'HEADERS_RECEIVED', 'LOADING', 'DONE'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// fnv is FNV-1a over a string's UTF-16 units or bytes: a short name for a big value.
function fnv(v) {
  let h = 0x811c9dc5;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    h ^= typeof v === 'string' ? v.charCodeAt(i) : v[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16);
}

// show turns any value into a short JSON-able description.
function show(v) {
  if (v === undefined) return '<undefined>';
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return v;
  if (typeof v === 'string') return v.length <= 80 ? v : `<string ${v.length} ${fnv(v)}>`;
  if (typeof v === 'function') return '<function>';
  if (v instanceof ArrayBuffer) return `<arraybuffer ${v.byteLength} ${fnv(new Uint8Array(v))}>`;
  if (v instanceof Blob) return `<blob ${v.size} ${JSON.stringify(v.type)}>`;
  if (v instanceof Document) {
    const root = v.documentElement;
    return `<document ${v.contentType} ${root && root.nodeName} ${root && fnv(root.textContent)}>`;
  }
  try {
    return `<${Object.prototype.toString.call(v)} ${fnv(JSON.stringify(v) || '')}>`;
  } catch {
    return `<${Object.prototype.toString.call(v)}>`;
  }
}

// thrown describes an exception by what code can test: name and class.
function thrown(e) {
  if (!e || typeof e !== 'object') return `<throws ${String(e)}>`;
  return `<throws ${e.name} ${e.constructor && e.constructor.name}${e instanceof DOMException ? ' code ' + e.code : ''}>`;
}

// attempt runs f and shows its value or its exception.
function attempt(f) {
  try {
    return show(f());
  } catch (e) {
    return thrown(e);
  }
}

// headers normalises getAllResponseHeaders(): the Date changes between
// two requests, so only its presence and form are compared.
function headers(all) {
  if (typeof all !== 'string') return show(all);
  return all.replace(/^date: [^\r\n]*/im, (l) => (Number.isNaN(Date.parse(l.slice(6))) ? 'date: <invalid>' : 'date: <http-date>'));
}

// Run is one run of one scenario with one implementation.
class Run {
  constructor(name, ours) {
    this.name = name;
    this.ours = ours;
    this.X = ours ? peer5.Request : Native;
    this.fetch = ours ? peer5.fetch : nativeFetch;
    this.obs = new Map();
    this.shared = [];
    this.pending = [];
    this.n = 0;
  }

  rec(label, value) {
    let l = label;
    for (let i = 2; this.obs.has(l); i++) l = `${label} #${i}`;
    this.obs.set(l, value);
  }

  /** val records f's value or exception. */
  val(label, f) { this.rec(label, attempt(f)); }

  /** later records a value that takes a promise to compute (a Blob's bytes). */
  later(label, p) {
    this.pending.push(Promise.resolve(p).then((v) => this.rec(label, show(v)), (e) => this.rec(label, thrown(e))));
  }

  /** url names a fixture with a query unique to this request, the same in both runs. */
  url(file) { return `/conf/${file}?${this.name}-${++this.n}`; }

  /** share says that peer5 must carry this URL itself (not delegate it). */
  share(url) { this.shared.push(new URL(url, document.baseURI).href.replace(/#.*/, '')); }
}

// snapshot records the state of x as a page would read it now.
function snapshot(ctx, x, at, opts = {}) {
  ctx.val(`${at}: readyState`, () => x.readyState);
  ctx.val(`${at}: status`, () => x.status);
  ctx.val(`${at}: statusText`, () => x.statusText);
  ctx.val(`${at}: responseURL`, () => x.responseURL);
  ctx.rec(`${at}: headers`, (() => { try { return headers(x.getAllResponseHeaders()); } catch (e) { return thrown(e); } })());
  ctx.val(`${at}: content-type`, () => x.getResponseHeader('Content-Type'));
  ctx.val(`${at}: responseType`, () => x.responseType);
  if (!opts.partial) {
    ctx.val(`${at}: response`, () => x.response);
    ctx.val(`${at}: responseText`, () => x.responseText);
    ctx.val(`${at}: responseXML`, () => x.responseXML);
    let r = null;
    try { r = x.response; } catch { /* recorded above */ }
    if (r instanceof Blob) ctx.later(`${at}: response bytes`, r.arrayBuffer());
  } else {
    ctx.val(`${at}: typeof response`, () => (x.response === null ? 'null' : typeof x.response));
    ctx.val(`${at}: responseXML`, () => x.responseXML);
  }
}

// eventDetails records what a listener sees of an event's own properties.
function eventDetails(ctx, x, e, self) {
  const t = e.type;
  ctx.rec(`event ${t}: class`, Object.prototype.toString.call(e));
  ctx.rec(`event ${t}: is ProgressEvent`, e instanceof ProgressEvent);
  for (const p of ['bubbles', 'cancelable', 'composed', 'eventPhase', 'defaultPrevented', 'returnValue', 'isTrusted']) ctx.rec(`event ${t}: ${p}`, show(e[p]));
  ctx.rec(`event ${t}: target is x`, e.target === x);
  ctx.rec(`event ${t}: currentTarget is x`, e.currentTarget === x);
  ctx.rec(`event ${t}: this is x`, self === x);
  ctx.rec(`event ${t}: composedPath`, e.composedPath().length);
}

// watch records the events of x (and of x.upload) and a snapshot at each
// state, until loadend and a little after it. It returns a Promise that
// resolves then; hooks[type](e) run inside listeners, after recording.
// With no loadend expected, watch(...).settle() ends it.
function watch(ctx, x, hooks = {}) {
  const events = [];
  const detailed = new Set();
  const snapped = new Set();
  const texts = [];
  let settle;
  const done = new Promise((r) => { settle = r; });
  for (const t of EVENTS) {
    x.addEventListener(t, function (e) {
      const rs = x.readyState;
      let tok = t === 'readystatechange' ? `rs${rs}` : `${t}@${rs}`;
      if (e instanceof ProgressEvent) {
        const part = e.loaded > 0 && e.loaded < e.total;
        tok += `(${e.lengthComputable ? 'L' : '-'} ${part ? 'part' : e.loaded}/${e.total})`;
        // The last progress comes at LOADING or, in Chromium when it was
        // held back by the 50 ms throttle, already at DONE.
        if (t === 'progress' && e.total > 0 && e.loaded === e.total && (rs === 3 || rs === 4)) tok = tok.replace(/@[34]/, '@3|4');
      }
      events.push(tok);
      if (!detailed.has(t) && !ctx.eventsTail) {
        detailed.add(t);
        eventDetails(ctx, x, e, this);
      }
      if (t === 'readystatechange') {
        if (rs === 3) {
          try { texts.push(x.responseText); } catch { /* not a text type */ }
        }
        if (!snapped.has(rs) && !ctx.eventsTail) {
          snapped.add(rs);
          snapshot(ctx, x, `rs${rs}`, { partial: rs === 3 });
        }
      }
      if (hooks[t]) hooks[t](e, x);
      if (t === 'loadend') setTimeout(settle, 100); // stray events after loadend count too
    });
  }
  for (const t of UPLOAD_EVENTS) x.upload.addEventListener(t, () => events.push('upload.' + t));
  done.then(() => {
    // A run may keep only the last few events, when the first ones depend on timing.
    ctx.rec('events', normalizeEvents(ctx.eventsTail ? events.slice(-ctx.eventsTail) : events));
    let final = null;
    try { final = x.responseText; } catch { /* not a text type */ }
    if (final && texts.length && !ctx.eventsTail) {
      ctx.rec('LOADING responseText: each a prefix of the final text', texts.every((s) => final.startsWith(s)));
      // Whether a partial text is seen at all depends on how the bytes
      // arrive: only a long download is sure to show one.
      if (ctx.expectPartial) ctx.rec('LOADING responseText: some partial, non-empty', texts.some((s) => s.length > 0 && s.length < final.length));
    }
  });
  done.settle = () => setTimeout(settle, 100);
  return done;
}

// normalizeEvents collapses the LOADING phase, whose length depends on
// how the bytes happened to arrive (in one chunk or many, 50 ms apart or
// not): a run of readystatechange(3) and progress events with part of the
// body becomes "LOADING" when it starts with readystatechange, as the
// standard orders them, and "LOADING[progress first]" otherwise.
function normalizeEvents(events) {
  const out = [];
  for (const tok of events) {
    const loading = tok === 'rs3' || /^progress@3\(L part\//.test(tok);
    const last = out[out.length - 1];
    if (loading && last && last.startsWith('LOADING')) continue;
    out.push(loading ? (tok === 'rs3' ? 'LOADING' : 'LOADING[progress first]') : tok);
  }
  return out.join(' ');
}

// get opens and sends a GET to url with responseType rt, watching it;
// before(x) runs just before send().
function get(ctx, url, rt, hooks, before) {
  const x = new ctx.X();
  const done = watch(ctx, x, hooks);
  x.open('GET', url);
  if (rt !== undefined) x.responseType = rt;
  if (before) before(x);
  x.send();
  return { x, done };
}

// --- scenarios -----------------------------------------------------------

const scenarios = [];
const scenario = (name, f) => scenarios.push([name, f]);

scenario('identity and initial state', async (ctx) => {
  const X = ctx.X;
  const x = new X();
  ctx.val('x instanceof XMLHttpRequest', () => x instanceof Native);
  ctx.val('x instanceof EventTarget', () => x instanceof EventTarget);
  ctx.val('x.constructor is the constructor', () => x.constructor === X);
  ctx.val('toString', () => Object.prototype.toString.call(x));
  ctx.val('String(x)', () => String(x));
  ctx.val('constructor name', () => X.name);
  ctx.val('constructor length', () => X.length);
  ctx.val('called without new', () => X());
  for (const [i, k] of CONSTANTS.entries()) {
    ctx.val(`x.${k}`, () => x[k]);
    ctx.val(`X.${k}`, () => X[k]);
    ctx.val(`x.${k} is ${i}`, () => x[k] === i);
  }
  ctx.val('own enumerable keys', () => Object.keys(x).join());
  ctx.val('own property names', () => Object.getOwnPropertyNames(x).join());
  ctx.val('own symbols', () => Object.getOwnPropertySymbols(x).length);
  ctx.val('JSON.stringify', () => JSON.stringify(x));
  ctx.val('for-in sees readyState', () => { for (const k in x) if (k === 'readyState') return true; return false; });
  ctx.val('"onload" in x', () => 'onload' in x);
  ctx.val('"onloadend" in x', () => 'onloadend' in x);
  ctx.val('upload toString', () => Object.prototype.toString.call(x.upload));
  ctx.val('upload instanceof XMLHttpRequestUpload', () => typeof XMLHttpRequestUpload === 'function' && x.upload instanceof XMLHttpRequestUpload);
  ctx.val('upload is the same object', () => x.upload === x.upload);
  ctx.val('upload.onprogress', () => x.upload.onprogress);
  for (const t of EVENTS) ctx.val(`on${t}`, () => x['on' + t]);
  snapshot(ctx, x, 'UNSENT');
  ctx.val('timeout', () => x.timeout);
  ctx.val('withCredentials', () => x.withCredentials);
  ctx.val('getResponseHeader(null)', () => x.getResponseHeader(null));
  ctx.val('getResponseHeader()', () => x.getResponseHeader());
});

scenario('event handler attributes', async (ctx) => {
  const x = new ctx.X();
  const f = () => {};
  for (const [what, v] of [['a string', 'alert(1)'], ['a number', 42], ['an object', {}], ['a function', f], ['null', null], ['undefined', undefined]]) {
    x.onload = v;
    ctx.val(`onload after assigning ${what}`, () => (x.onload === f ? '<the function>' : x.onload));
  }
  const order = [];
  x.addEventListener('load', () => order.push('A'));
  x.onload = () => order.push('H1');
  x.addEventListener('load', () => order.push('B'));
  x.onload = () => order.push('H2'); // keeps the first assignment's place
  x.addEventListener('loadend', () => order.push('C'));
  x.onloadend = () => order.push('E1');
  x.onloadend = null; // a handler set again after null goes last
  x.addEventListener('loadend', () => order.push('D'));
  x.onloadend = () => order.push('E2');
  let self = null;
  x.onreadystatechange = function () { self = this; };
  const url = ctx.url('text.txt');
  ctx.share(url);
  const done = watch(ctx, x);
  x.open('GET', url);
  x.send();
  await done;
  ctx.rec('listener order', order.join(' '));
  ctx.rec('this in onreadystatechange', self === x);
  const y = new ctx.X();
  const order2 = [];
  y.addEventListener('loadstart', () => order2.push('A'));
  y.addEventListener('loadstart', () => order2.push('A (capture)'), true);
  y.onloadstart = () => order2.push('H');
  y.addEventListener('loadstart', (e) => { order2.push('B'); e.stopImmediatePropagation(); });
  y.addEventListener('loadstart', () => order2.push('C'));
  const url2 = ctx.url('text.txt');
  ctx.share(url2);
  const done2 = watch(ctx, y);
  y.open('GET', url2);
  y.send();
  ctx.rec('loadstart listeners, capture and stopImmediatePropagation', order2.join(' '));
  await done2;
});

scenario('open() arguments', async (ctx) => {
  const x = new ctx.X();
  let rs = 0;
  x.onreadystatechange = () => rs++;
  const url = ctx.url('text.txt');
  ctx.val('open()', () => x.open());
  ctx.val('open(GET)', () => x.open('GET'));
  ctx.val('open with a bad method token', () => x.open('GE T', url));
  ctx.val('open CONNECT', () => x.open('CONNECT', url));
  ctx.val('open TRACE', () => x.open('trace', url));
  ctx.val('open TRACK', () => x.open('TRACK', url));
  ctx.val('open a bad URL', () => x.open('GET', 'http://[bad'));
  ctx.val('readyState after failed opens', () => x.readyState);
  ctx.val('readystatechange after failed opens', () => rs);
  ctx.val('open', () => x.open('GET', url));
  ctx.val('open again', () => x.open('get', url));
  ctx.val('open with async true', () => x.open('GET', url, true));
  ctx.val('open with user and password null', () => x.open('GET', url, true, null, null));
  ctx.val('readystatechange count after four opens', () => rs);
  snapshot(ctx, x, 'OPENED');
  ctx.val('abort in OPENED', () => x.abort());
  ctx.val('readyState after abort in OPENED', () => x.readyState);
  ctx.val('readystatechange count after abort in OPENED', () => rs);
});

scenario('open() with async undefined is synchronous', async (ctx) => {
  const x = new ctx.X();
  const url = ctx.url('text.txt');
  x.open('GET', url, undefined);
  ctx.val('send', () => x.send());
  snapshot(ctx, x, 'right after send');
});

scenario('setRequestHeader()', async (ctx) => {
  const x = new ctx.X();
  ctx.val('before open', () => x.setRequestHeader('Accept', 'text/plain'));
  const url = ctx.url('text.txt');
  x.open('GET', url);
  ctx.val('a bad name', () => x.setRequestHeader('a b', 'v'));
  ctx.val('a bad value', () => x.setRequestHeader('X-Test', 'a\nb'));
  ctx.val('a forbidden name', () => x.setRequestHeader('Accept-Encoding', 'x'));
  ctx.val('Accept', () => x.setRequestHeader('Accept', 'text/plain'));
  ctx.val('Accept again', () => x.setRequestHeader('accept', '*/*'));
  ctx.val('X-Requested-With', () => x.setRequestHeader('X-Requested-With', 'XMLHttpRequest'));
  ctx.share(url);
  const done = watch(ctx, x);
  x.send();
  ctx.val('after send', () => x.setRequestHeader('Accept', 'text/plain'));
  await done;
  ctx.val('after load', () => x.setRequestHeader('Accept', 'text/plain'));
});

scenario('send() states', async (ctx) => {
  const x = new ctx.X();
  ctx.val('send before open', () => x.send());
  const url = ctx.url('text.txt');
  x.open('GET', url);
  ctx.share(url);
  const done = watch(ctx, x);
  ctx.val('send', () => x.send());
  ctx.val('send again', () => x.send());
  await done;
  ctx.val('send after load', () => x.send());
});

for (const [file, rt] of [['text.txt', ''], ['text.txt', 'text'], ['data.json', 'json'], ['bin.dat', 'arraybuffer'], ['bin.dat', 'blob']]) {
  scenario(`GET ${file} as "${rt}"`, async (ctx) => {
    const url = ctx.url(file);
    ctx.share(url);
    const { x, done } = get(ctx, url, rt);
    await done;
    snapshot(ctx, x, 'after loadend');
    ctx.val('response is the same object each time', () => x.response === x.response);
    ctx.val('own enumerable keys after load', () => Object.keys(x).join());
  });
}

scenario('responseText grows while LOADING', async (ctx) => {
  ctx.expectPartial = true;
  const url = ctx.url('long.txt');
  ctx.share(url);
  const { done } = get(ctx, url, '');
  await done;
});

scenario('GET text.txt as "document"', async (ctx) => {
  const { x, done } = get(ctx, ctx.url('text.txt'), 'document');
  await done;
  snapshot(ctx, x, 'after loadend');
});

for (const file of ['latin1.txt', 'bom.txt', 'utf16.txt', 'invalid.txt', 'params.txt', 'data.json', 'doc.xml', 'page.html']) {
  for (const rt of ['', 'text']) {
    scenario(`decoding ${file} as "${rt}"`, async (ctx) => {
      const url = ctx.url(file);
      ctx.share(url);
      const { x, done } = get(ctx, url, rt);
      await done;
      ctx.val('responseText', () => x.responseText);
      ctx.val('head of responseText', () => x.responseText.slice(0, 60));
      ctx.val('responseXML', () => x.responseXML);
    });
  }
}

for (const [file, rt] of [['doc.xml', ''], ['doc.xml', 'document'], ['page.html', 'document']]) {
  scenario(`responseXML of ${file} as "${rt}"`, async (ctx) => {
    const url = ctx.url(file);
    if (rt === '') ctx.share(url); // "document" set before send() is delegated
    const { x, done } = get(ctx, url, rt);
    await done;
    let doc = null;
    ctx.val('responseXML', () => (doc = x.responseXML));
    if (!doc) return;
    for (const p of ['contentType', 'characterSet', 'compatMode', 'URL', 'documentURI', 'title']) ctx.val(`document ${p}`, () => doc[p]);
    ctx.val('root', () => doc.documentElement.nodeName);
    ctx.val('elements', () => doc.getElementsByTagName('*').length);
    ctx.val('text of the first element', () => doc.documentElement.firstElementChild.textContent);
    ctx.val('the same document each time', () => x.responseXML === doc);
    ctx.val('scripts', () => doc.scripts && doc.scripts.length);
  });
}

for (const [file, rt] of [['latin1.txt', 'blob'], ['params.txt', 'blob'], ['data.json', 'json'], ['bom.json', 'json'], ['bad.json', 'json'], ['latin1.txt', 'json']]) {
  scenario(`${file} as "${rt}"`, async (ctx) => {
    const url = ctx.url(file);
    ctx.share(url);
    const { x, done } = get(ctx, url, rt);
    await done;
    ctx.val('response', () => x.response);
    if (rt === 'blob') ctx.later('blob bytes', x.response.arrayBuffer());
  });
}

scenario('overrideMimeType()', async (ctx) => {
  const cases = [
    ['text.txt', '', 'text/plain; charset=windows-1252'],
    ['latin1.txt', '', 'text/plain;charset=UTF-8'],
    ['latin1.txt', '', 'text/xml'],
    ['latin1.txt', 'blob', 'application/x-Test; Charset="UTF-8"'],
    ['latin1.txt', 'blob', 'bogus'],
    ['data.json', 'json', 'text/plain; charset=iso-8859-1'],
  ];
  for (const [file, rt, mime] of cases) {
    const url = ctx.url(file);
    ctx.share(url);
    const { x, done } = get(ctx, url, rt, {}, (x) => x.overrideMimeType(mime));
    await done;
    ctx.val(`${file} as "${rt}" with ${mime}: response`, () => x.response);
    ctx.val(`${file} with ${mime}: content-type`, () => x.getResponseHeader('content-type'));
    if (rt === 'blob') ctx.later(`${file} with ${mime}: blob bytes`, x.response.arrayBuffer());
  }
  const states = [];
  const url = ctx.url('latin1.txt');
  ctx.share(url);
  const { x, done } = get(ctx, url, '', {
    readystatechange(e, x) {
      if (x.readyState === 2) states.push('HEADERS_RECEIVED ' + attempt(() => x.overrideMimeType('text/plain;charset=utf-8')));
      if (x.readyState === 3 && states.length < 2) states.push('LOADING ' + attempt(() => x.overrideMimeType('text/plain')));
      if (x.readyState === 4) states.push('DONE ' + attempt(() => x.overrideMimeType('text/plain')));
    },
  });
  await done;
  ctx.rec('overrideMimeType at each state', states.join(', '));
  ctx.val('responseText after overrideMimeType at HEADERS_RECEIVED', () => x.responseText);
});

scenario('overrideMimeType() before open() and across open()', async (ctx) => {
  const x = new ctx.X();
  ctx.val('overrideMimeType when UNSENT', () => x.overrideMimeType('text/plain;charset=UTF-8'));
  for (const n of [1, 2]) {
    const url = ctx.url('latin1.txt');
    ctx.share(url);
    const done = watch(ctx, x);
    x.open('GET', url);
    x.send();
    await done;
    ctx.val(`responseText, request ${n}`, () => x.responseText);
    ctx.val(`content-type, request ${n}`, () => x.getResponseHeader('content-type'));
  }
});

scenario('response headers', async (ctx) => {
  const url = ctx.url('bin.dat');
  ctx.share(url);
  const names = ['Content-Type', 'content-length', 'ETag', 'Last-Modified', 'Accept-Ranges', 'Content-Disposition',
    'X-Custom', 'x-multi', 'Cache-Control', 'Server', 'Set-Cookie', 'Vary', 'X-Missing', 'CONTENT-TYPE', 'content-type '];
  const x = new ctx.X();
  for (const n of names.slice(0, 2)) ctx.val(`UNSENT ${n}`, () => x.getResponseHeader(n));
  const done = watch(ctx, x, {
    readystatechange() {
      if (x.readyState === 2) for (const n of names) ctx.val(`HEADERS_RECEIVED ${n}`, () => x.getResponseHeader(n));
    },
  });
  x.open('GET', url);
  for (const n of names.slice(0, 2)) ctx.val(`OPENED ${n}`, () => x.getResponseHeader(n));
  x.send();
  await done;
  for (const n of names) ctx.val(`DONE ${n}`, () => x.getResponseHeader(n));
  ctx.val('Date is an HTTP date', () => !Number.isNaN(Date.parse(x.getResponseHeader('Date'))));
});

for (const at of ['loadstart', 'rs2', 'rs3', 'rs4', 'load', 'loadend']) {
  for (const rt of ['', 'arraybuffer']) {
    scenario(`abort() at ${at} ("${rt}")`, async (ctx) => {
      const url = ctx.url('text.txt');
      if (at !== 'loadstart') ctx.share(url); // aborted before anything was fetched
      let aborted = false;
      const abortNow = (e, x) => {
        const here = e.type === 'readystatechange' ? 'rs' + x.readyState : e.type;
        if (here !== at || aborted) return;
        aborted = true;
        ctx.val('abort()', () => x.abort());
        snapshot(ctx, x, 'right after abort');
      };
      const hooks = {};
      for (const t of EVENTS) hooks[t] = abortNow;
      const { x, done } = get(ctx, url, rt, hooks);
      const deadline = Date.now() + 20000;
      while (!aborted && Date.now() < deadline) await sleep(20);
      await sleep(300); // abort() in DONE fires nothing, and nothing may follow
      done.settle();
      await done;
      snapshot(ctx, x, 'after abort settled');
      // The same object again, after open().
      const again = ctx.url('text.txt');
      ctx.share(again);
      const done2 = watch(ctx, x);
      x.open('GET', again);
      x.send();
      await done2;
      snapshot(ctx, x, 'reused');
    });
  }
}

scenario('abort() right after send()', async (ctx) => {
  const url = ctx.url('text.txt');
  ctx.share(url);
  const { x, done } = get(ctx, url, '');
  ctx.val('abort()', () => x.abort());
  snapshot(ctx, x, 'right after abort');
  await done;
});

scenario('abort() twice and before send', async (ctx) => {
  const x = new ctx.X();
  let rs = 0;
  x.onreadystatechange = () => rs++;
  ctx.val('abort in UNSENT', () => x.abort());
  ctx.val('readyState', () => x.readyState);
  const url = ctx.url('text.txt');
  x.open('GET', url);
  ctx.val('abort in OPENED', () => x.abort());
  ctx.val('readyState after abort in OPENED', () => x.readyState);
  ctx.val('send after abort in OPENED', () => (x.send(), x.readyState));
  ctx.share(url);
  ctx.val('abort after send', () => x.abort());
  ctx.val('abort again', () => x.abort());
  ctx.val('readystatechange count', () => rs);
  snapshot(ctx, x, 'after two aborts');
});

for (const rt of ['', 'json', 'arraybuffer', 'blob']) {
  scenario(`open() during LOADING ("${rt}")`, async (ctx) => {
    const url = ctx.url('text.txt');
    ctx.share(url);
    let reopened;
    const opened = new Promise((r) => { reopened = r; });
    const seen = [];
    const { x, done } = get(ctx, url, rt, {
      readystatechange(e, x) {
        seen.push(x.readyState);
        if (x.readyState === 3 && seen.filter((s) => s === 3).length === 1) {
          ctx.val('open()', () => x.open('GET', ctx.url('text.txt')));
          snapshot(ctx, x, 'right after open');
          reopened();
        }
      },
    });
    await opened;
    await sleep(300); // nothing more may happen
    done.settle();
    await done;
    ctx.rec('readyStates seen', seen.join(' '));
    snapshot(ctx, x, 'after open settled');
  });
}

scenario('timeout', async (ctx) => {
  const x = new ctx.X();
  ctx.val('timeout = -5', () => { x.timeout = -5; return x.timeout; });
  ctx.val('timeout = "12"', () => { x.timeout = '12'; return x.timeout; });
  ctx.val('timeout = 1e12', () => { x.timeout = 1e12; return x.timeout; });
  x.timeout = 0;
  ctx.val('sync open with a timeout', () => { x.timeout = 10; x.open('GET', ctx.url('text.txt'), false); });
  x.timeout = 0;
  x.open('GET', ctx.url('text.txt'), false);
  ctx.val('timeout on a sync request', () => { x.timeout = 10; return x.timeout; });
  ctx.val('responseType on a sync request', () => { x.responseType = 'text'; return x.responseType; });
});

for (const when of ['before send', 'at HEADERS_RECEIVED', 'at LOADING']) {
  scenario(`timeout set ${when}`, async (ctx) => {
    const url = ctx.url('text.txt');
    ctx.share(url);
    // Whether the headers, or any bytes, beat a 1 ms timeout is a race:
    // only the end is compared.
    ctx.eventsTail = 3;
    let set = false;
    const setNow = (x) => { set = true; x.timeout = 1; ctx.val('timeout read back', () => x.timeout); };
    const { x, done } = get(ctx, url, '', {
      readystatechange(e, x) {
        if (!set && ((when === 'at HEADERS_RECEIVED' && x.readyState === 2) || (when === 'at LOADING' && x.readyState === 3))) setNow(x);
      },
    }, (x) => { if (when === 'before send') setNow(x); });
    await done;
    snapshot(ctx, x, 'after timeout');
  });
}

scenario('a timeout that does not expire', async (ctx) => {
  const url = ctx.url('text.txt');
  ctx.share(url);
  const { x, done } = get(ctx, url, '', {}, (y) => { y.timeout = 60000; });
  await done;
  snapshot(ctx, x, 'after loadend');
});

scenario('responseType', async (ctx) => {
  const x = new ctx.X();
  ctx.val('set "foo" when UNSENT', () => { x.responseType = 'foo'; return x.responseType; });
  ctx.val('set "document" when UNSENT', () => { x.responseType = 'document'; return x.responseType; });
  ctx.val('set "JSON" when UNSENT', () => { x.responseType = 'JSON'; return x.responseType; });
  x.responseType = '';
  const url = ctx.url('text.txt');
  ctx.share(url);
  const seen = [];
  const done = watch(ctx, x, {
    readystatechange() {
      if (x.readyState === 2) seen.push('HEADERS_RECEIVED ' + attempt(() => { x.responseType = 'arraybuffer'; return x.responseType; }));
      if (x.readyState === 3 && seen.length < 2) seen.push('LOADING ' + attempt(() => { x.responseType = 'text'; return x.responseType; }));
      if (x.readyState === 4) seen.push('DONE ' + attempt(() => { x.responseType = 'text'; return x.responseType; }));
    },
  });
  x.open('GET', url);
  x.send();
  await done;
  ctx.rec('responseType set at each state', seen.join(', '));
  ctx.val('response after responseType arraybuffer at HEADERS_RECEIVED', () => x.response);
});

for (const rt of ['json', 'arraybuffer', 'blob', 'text']) {
  scenario(`responseText and responseXML with "${rt}"`, async (ctx) => {
    const url = ctx.url('data.json');
    ctx.share(url);
    const { x, done } = get(ctx, url, rt);
    await done;
    ctx.val('responseText', () => x.responseText);
    ctx.val('responseXML', () => x.responseXML);
  });
}

scenario('responseURL drops the fragment', async (ctx) => {
  const url = ctx.url('text.txt');
  ctx.share(url);
  const { x, done } = get(ctx, url + '#part');
  await done;
  ctx.val('responseURL', () => x.responseURL);
});

// underBase runs f(url, base) with a <base href="/conf/sub/"> in the page and
// url a fixture's address relative to it.
async function underBase(ctx, f) {
  const base = document.createElement('base');
  base.href = '/conf/sub/';
  document.head.prepend(base);
  try {
    const rel = '../' + ctx.url('text.txt').slice('/conf/'.length);
    ctx.share(new URL(rel, document.baseURI).href);
    await f(rel, base);
  } finally {
    base.remove();
  }
}

scenario('relative URL against <base href>', (ctx) => underBase(ctx, async (rel, base) => {
  const x = new ctx.X();
  const done = watch(ctx, x);
  x.open('GET', rel);
  base.href = '/elsewhere/'; // the URL was resolved by open()
  x.send();
  await done;
  snapshot(ctx, x, 'after loadend');
}));

scenario('send() with a body on GET', async (ctx) => {
  const url = ctx.url('text.txt');
  ctx.share(url);
  const x = new ctx.X();
  const done = watch(ctx, x);
  x.open('GET', url);
  x.send('ignored: GET has no body');
  await done;
  snapshot(ctx, x, 'after loadend');
});

scenario('withCredentials', async (ctx) => {
  const x = new ctx.X();
  const url = ctx.url('text.txt');
  x.open('GET', url);
  ctx.share(url);
  const done = watch(ctx, x);
  x.send();
  ctx.val('set after send', () => { x.withCredentials = true; return x.withCredentials; });
  await done;
  ctx.val('set after load', () => { x.withCredentials = true; return x.withCredentials; });
  const y = new ctx.X();
  y.withCredentials = true;
  const done2 = watch(ctx, y);
  y.open('GET', ctx.url('text.txt'));
  y.send();
  await done2;
  snapshot(ctx, y, 'with credentials');
});

for (const [what, method, file, body] of [['404', 'GET', 'missing.txt'], ['a small file', 'GET', 'small.txt'], ['a POST', 'POST', 'text.txt', 'a=1']]) {
  scenario(`delegated: ${what}`, async (ctx) => {
    const x = new ctx.X();
    const done = watch(ctx, x);
    x.open(method, ctx.url(file));
    x.send(body);
    await done;
    snapshot(ctx, x, 'after loadend');
  });
}

scenario('window.XMLHttpRequest = peer5.Request', async (ctx) => {
  const saved = window.XMLHttpRequest;
  window.XMLHttpRequest = ctx.X;
  try {
    const cases = [['POST', 'text.txt', 'a=1'], ['GET', 'missing.txt'], ['GET', 'small.txt'], ['GET', 'text.txt', null, true]];
    for (const [method, file, body, shared] of cases) {
      const x = new XMLHttpRequest(); // eslint-disable-line no-undef
      const url = ctx.url(file);
      if (shared) ctx.share(url);
      const done = watch(ctx, x);
      x.open(method, url);
      x.setRequestHeader('Accept', 'application/json, text/plain, */*');
      ctx.val(`${method} ${file}: send`, () => x.send(body));
      await Promise.race([done, sleep(20000)]);
      snapshot(ctx, x, `${method} ${file}`);
    }
  } finally {
    window.XMLHttpRequest = saved;
  }
});

scenario('upload', async (ctx) => {
  const url = ctx.url('text.txt');
  ctx.share(url);
  const x = new ctx.X();
  const seen = [];
  for (const t of UPLOAD_EVENTS) x.upload['on' + t] = () => seen.push(t);
  const done = watch(ctx, x);
  x.open('GET', url);
  x.send();
  await done;
  ctx.rec('upload handlers called', seen.join(' '));
});

// --- runner --------------------------------------------------------------

const SCENARIO_TIMEOUT = 30000;

async function runOne(name, f, ours) {
  const ctx = new Run(name, ours);
  let timer;
  try {
    await Promise.race([f(ctx), new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('scenario timed out')), SCENARIO_TIMEOUT); })]);
  } catch (e) {
    ctx.rec('scenario failed', `${thrown(e)} ${e && e.message}`);
  } finally {
    clearTimeout(timer);
  }
  await Promise.all(ctx.pending);
  await sleep(0);
  return ctx;
}

/** scenarioNames lists the suite's scenarios, in order. */
const scenarioNames = () => scenarios.map(([name]) => name);

/**
 * runConformance runs the scenarios named (an array of names, or a RegExp
 * source; all by default) and resolves to {checks, differences,
 * notCarried, scenarios}: every label compared, those whose values differ,
 * and the URLs peer5 should have carried itself but delegated.
 */
async function runConformance(only) {
  const re = typeof only === 'string' && only ? new RegExp(only) : null;
  const out = { checks: 0, differences: [], notCarried: [], scenarios: 0 };
  for (const [name, f] of scenarios) {
    if ((re && !re.test(name)) || (Array.isArray(only) && !only.includes(name))) continue;
    out.scenarios++;
    const a = await runOne(name, f, false);
    const b = await runOne(name, f, true);
    const labels = [...new Set([...a.obs.keys(), ...b.obs.keys()])];
    for (const l of labels) {
      out.checks++;
      const na = a.obs.has(l) ? a.obs.get(l) : '<not observed>';
      const nb = b.obs.has(l) ? b.obs.get(l) : '<not observed>';
      if (JSON.stringify(na) !== JSON.stringify(nb)) out.differences.push({ scenario: name, check: l, native: na, peer5: nb });
    }
    for (const u of b.shared) {
      const s = peer5.stats(u);
      if (!s || s.state === 'delegated') out.notCarried.push({ scenario: name, url: u, state: s && s.state });
    }
  }
  return out;
}
