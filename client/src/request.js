// peer5.Request is an XMLHttpRequest: a subclass of the browser's own,
// taken when the client loaded (native.js). Identity (instanceof, the
// constants, toString), `upload`, the on* handler attributes, argument
// checks and every request it does not carry itself are the browser's:
// such a request is sent by the object itself, untouched.
//
// A shareable GET is carried by Client.transfer (HTTP ranges and
// neighbours, every block verified) and shown as the XMLHttpRequest
// standard shows a response: the same states, events in the same order
// (progress at most every 50 ms), the origin's headers from the
// manifest, the text decoded as XHR decodes it and, while LOADING, the
// part of it that has arrived in order. If the module does not share the
// resource, or the transfer fails before the headers were shown, the
// native request is sent after all, its second loadstart hidden.
import { NativeXHR } from './native.js';
import { delegatedStats, progressEvent } from './events.js';
import { allHeaders, essence, isHTML, isXML, parseMime, sharedHeaders, textDecoder } from './response.js';
import { readAll } from './store.js';

const N = NativeXHR.prototype;
const nget = (x, p) => Reflect.get(N, p, x);
const nset = (x, p, v) => Reflect.set(N, p, v, x);
const listen = EventTarget.prototype.addEventListener;
const dispatch = EventTarget.prototype.dispatchEvent;
const PROGRESS_INTERVAL = 50;
// Where Chromium and Firefox disagree (JSON identity, blob type, events
// after abort() in a handler, upload events for a GET), each page gets its
// own engine's behaviour: peer5.Request replaces that engine's object.
const GECKO = typeof window.mozInnerScreenX === 'number';
const XHR_PROGRESS = ['loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
const isText = (rt) => rt === '' || rt === 'text';

// Each object's own state, kept out of sight: pages see no own property.
const states = new WeakMap();
const transferOf = (x) => { const s = states.get(x); return s && s.t; };

const domError = (msg, name) => new DOMException(msg, name);
const notOpened = (what) => domError(`Failed to execute '${what}' on 'XMLHttpRequest': The object's state must be OPENED.`, 'InvalidStateError');

function fire(x, type, loaded, total) {
  const s = states.get(x);
  dispatch.call(x, loaded === undefined ? new Event(type) : progressEvent(type, loaded, total, s.stats));
}

// stop ends a transfer's timers and, with a reason, the transfer itself.
function stop(t, reason) {
  clearTimeout(t.timer);
  clearTimeout(t.deferred);
  t.deferred = 0;
  if (reason !== undefined) t.ac.abort(reason);
}

// forget makes a transfer's response a network error: status 0, no headers, no body.
function forget(t) {
  Object.assign(t, { status: 0, statusText: '', headers: null, responseURL: '', loaded: 0, length: 0, text: '', bytes: null, blob: null, cache: null, error: true });
}

// requestError runs XHR's request error steps for abort, timeout or error.
function requestError(x, s, t, type) {
  stop(t);
  t.ac.abort(type === 'abort' ? undefined : type); // a report tells a timeout (an error) from an abort
  t.state = 4;
  t.sent = false;
  forget(t);
  fire(x, 'readystatechange');
  // Chromium signals the end to x.upload too, even for a request without a body.
  if (!GECKO) {
    dispatch.call(x.upload, progressEvent(type, 0, 0, s.stats));
    dispatch.call(x.upload, progressEvent('loadend', 0, 0, s.stats));
  }
  fire(x, type, 0, 0);
  fire(x, 'loadend', 0, 0);
}

// finalMime is XHR's final MIME type: the override if set, else the
// response's Content-Type (text/xml when absent or invalid).
function finalMime(s, t) {
  if (s.mime !== null) return parseMime(s.mime) || parseMime('application/octet-stream');
  return parseMime(t.headers.get('content-type') || '') || parseMime('text/xml');
}

// charsetLabel is XHR's final charset: the override's, else the response's.
function charsetLabel(s, t) {
  const o = s.mime !== null && parseMime(s.mime);
  if (o && o.params.has('charset')) return o.params.get('charset');
  const r = parseMime(t.headers.get('content-type') || '');
  return (r && r.params.get('charset')) || null;
}

// decode appends bytes to the text response.
function decode(x, s, t, bytes, last) {
  if (!t.decoder) t.decoder = textDecoder(bytes, charsetLabel(s, t), nget(x, 'responseType') === '' && isXML(finalMime(s, t)));
  t.text += t.decoder.decode(bytes, { stream: !last });
  t.textBytes += bytes.length;
}

// extendText decodes the blocks that arrived in order since the last call,
// so that responseText grows while LOADING as it does natively.
async function extendText(x, s, t, store) {
  while (store && isText(nget(x, 'responseType')) && store.has(t.next)) {
    const b = await store.read(t.next);
    if (s.t !== t || !t.sent || !b) return;
    decode(x, s, t, b, false);
    t.next++;
  }
}

// progressStep is XHR's "process response body chunk": readystatechange
// then progress, at most every 50 ms (a later call is deferred, not lost).
function progressStep(x, s, t) {
  if (s.t !== t || t.state < 2 || t.state > 3) return;
  const wait = t.lastProgress + PROGRESS_INTERVAL - performance.now();
  if (wait > 0) {
    if (!t.deferred) t.deferred = setTimeout(() => { t.deferred = 0; progressStep(x, s, t); }, wait);
    return;
  }
  t.lastProgress = performance.now();
  t.state = 3;
  const length = t.length;
  fire(x, 'readystatechange');
  // Fired whatever the handler did, as the standard says: after abort()
  // or open() it reports nothing loaded (of 0 in Chromium, of the length
  // in Firefox).
  const live = s.t === t && !t.error;
  t.shown = live ? t.loaded : 0;
  fire(x, 'progress', t.shown, live || GECKO ? length : 0);
}

// finish is XHR's "process response end-of-body" for a completed transfer.
async function finish(x, s, t, r) {
  s.stats = statsOf(r.stats);
  t.blob = r.blob;
  // Bytes in memory for every type but blob; text is decoded up to the end.
  while (!t.bytes && nget(x, 'responseType') !== 'blob') {
    const { bytes, fromHttp } = await readAll(r, t.ac.signal);
    if (s.t !== t || !t.sent) return; // aborted, timed out or reopened meanwhile
    t.bytes = bytes;
    s.stats.bytesFromHttp += fromHttp; // blocks the browser could not read back came again
  }
  t.loaded = r.manifest.size;
  if (t.bytes && isText(nget(x, 'responseType'))) decode(x, s, t, t.bytes.subarray(t.textBytes), true);
  else if (t.bytes) t.decoder = null; // decoded from the start, when asked
  stop(t);
  if (t.state === 2) {
    t.state = 3;
    fire(x, 'readystatechange');
    if (s.t !== t || t.state !== 3) return;
  }
  if (t.shown !== t.loaded || t.shown === 0) {
    t.shown = t.loaded;
    fire(x, 'progress', t.loaded, t.length);
    if (s.t !== t || t.state !== 3) return;
  }
  t.state = 4;
  t.sent = false;
  const { loaded, length } = t;
  fire(x, 'readystatechange');
  // A readystatechange handler that called abort() or open() ends it here
  // in Chromium; Firefox, as the standard, fires load and loadend anyway.
  // After load, loadend comes whatever the handler did (Chromium shows 0
  // of 0 after an abort()).
  if (!GECKO && (s.t !== t || t.state !== 4)) return;
  fire(x, 'load', loaded, length);
  const live = GECKO || (s.t === t && !t.error);
  fire(x, 'loadend', live ? loaded : 0, live ? length : 0);
}

// blobType is the type of a blob response: the final MIME type's essence;
// Firefox keeps an override's parameters (its charset lowercased).
function blobType(s, t) {
  const m = finalMime(s, t);
  if (!GECKO || s.mime === null || !parseMime(s.mime)) return essence(m);
  return essence(m) + [...m.params].map(([k, v]) => `;${k}=${k === 'charset' ? v.toLowerCase() : v}`).join('');
}

const statsOf = (st) => ({ bytesFromHttp: st.bytesFromHttp, bytesFromPeers: st.bytesFromPeers, peers: st.peers });

// wholeText is the text response decoded from the start (for a responseType
// that needed none while loading, or an override set late).
function wholeText(x, s, t) {
  if (t.decoder === null && t.bytes) {
    t.text = '';
    t.textBytes = 0;
    decode(x, s, t, t.bytes, true);
  }
  return t.text;
}

// documentOf is XHR's document response, parsed from the text.
function documentOf(x, s, t) {
  const rt = nget(x, 'responseType');
  const m = finalMime(s, t);
  if (!(rt === 'document' && isHTML(m)) && !isXML(m)) return null;
  const type = isHTML(m) ? 'text/html' : ['text/xml', 'application/xml', 'application/xhtml+xml', 'image/svg+xml'].includes(essence(m)) ? essence(m) : 'application/xml';
  const doc = new DOMParser().parseFromString(t.bytes ? wholeText(x, s, t) : '', type);
  return doc.getElementsByTagNameNS('*', 'parsererror').length ? null : doc;
}

// cached computes a response object once, as XHR keeps its response object.
function cached(t, kind, make) {
  if (!t.cache || t.cache.kind !== kind) t.cache = { kind, value: make() };
  return t.cache.value;
}

/** makeRequest returns peer5.Request bound to a Client. */
export function makeRequest(client) {
  class XMLHttpRequest extends NativeXHR {
    constructor() {
      super();
      const s = { t: null, args: null, headers: [], mime: null, timeout: 0, shift: 0, quiet: false, sent: false, stats: delegatedStats(0) };
      states.set(this, s);
      // Capturing listeners on the object itself, added before any of the
      // page's, see native events first: they hide the loadstart of a late
      // delegation and count a delegated download's bytes.
      listen.call(this, 'loadstart', (e) => {
        if (e.isTrusted && s.quiet) {
          s.quiet = false;
          e.stopImmediatePropagation();
        }
      }, true);
      for (const type of XHR_PROGRESS) {
        listen.call(this, type, (e) => {
          if (!e.isTrusted) return;
          if (type === 'progress' || type === 'load') s.stats = delegatedStats(e.loaded);
          Object.assign(e, s.stats);
        }, true);
      }
    }

    get readyState() { const t = transferOf(this); return t ? t.state : super.readyState; }
    get status() { const t = transferOf(this); return t ? t.status : super.status; }
    get statusText() { const t = transferOf(this); return t ? t.statusText : super.statusText; }
    get responseURL() { const t = transferOf(this); return t ? t.responseURL : super.responseURL; }

    /** Where the bytes of the last response came from: {bytesFromHttp, bytesFromPeers, peers}. */
    get stats() { const s = states.get(this); return s && s.stats; }

    get responseType() { return super.responseType; }
    set responseType(v) {
      const t = transferOf(this);
      if (t && t.state >= 3) throw domError("Failed to set the 'responseType' property on 'XMLHttpRequest': The response type cannot be set if the object's state is LOADING or DONE.", 'InvalidStateError');
      super.responseType = v;
    }

    get timeout() { const s = states.get(this); return s ? s.timeout : super.timeout; }
    set timeout(v) {
      const s = states.get(this);
      super.timeout = v; // the browser converts and checks it
      if (!s) return;
      s.timeout = super.timeout;
      // A delegation that came late started its clock late.
      if (s.shift && s.timeout) super.timeout = Math.max(1, s.timeout - s.shift);
      const t = s.t;
      if (t && t.sent && t.state < 4) {
        clearTimeout(t.timer);
        if (s.timeout) t.timer = setTimeout(() => onTimeout(this, s, t), Math.max(0, t.started + s.timeout - performance.now()));
      }
    }

    get withCredentials() { return super.withCredentials; }
    set withCredentials(v) {
      const t = transferOf(this);
      if (t && t.state !== 0) throw domError("Failed to set the 'withCredentials' property on 'XMLHttpRequest': The value may only be set if the object's state is UNSENT or OPENED.", 'InvalidStateError');
      super.withCredentials = v;
    }

    get response() {
      const t = transferOf(this);
      if (!t) return super.response;
      const rt = super.responseType;
      if (isText(rt)) return t.state >= 3 ? wholeText(this, states.get(this), t) : '';
      if (t.state !== 4 || t.error) return null;
      const s = states.get(this);
      switch (rt) {
        case 'arraybuffer': return cached(t, rt, () => t.bytes.buffer);
        case 'blob': return cached(t, rt, () => (t.bytes ? new Blob([t.bytes]) : t.blob).slice(0, t.loaded, blobType(s, t)));
        case 'document': return cached(t, rt, () => documentOf(this, s, t));
        case 'json': {
          const parse = () => { try { return JSON.parse(new TextDecoder().decode(t.bytes)); } catch { return null; } };
          return GECKO ? cached(t, rt, parse) : parse(); // Chromium parses on every read
        }
      }
      return null;
    }

    get responseText() {
      const t = transferOf(this);
      if (!t) return super.responseText;
      const rt = super.responseType;
      if (!isText(rt)) throw domError(`Failed to read the 'responseText' property from 'XMLHttpRequest': The value is only accessible if the object's 'responseType' is '' or 'text' (was '${rt}').`, 'InvalidStateError');
      return t.state >= 3 ? wholeText(this, states.get(this), t) : '';
    }

    get responseXML() {
      const t = transferOf(this);
      if (!t) return super.responseXML;
      const rt = super.responseType;
      if (rt !== '' && rt !== 'document') throw domError(`Failed to read the 'responseXML' property from 'XMLHttpRequest': The value is only accessible if the object's 'responseType' is '' or 'document' (was '${rt}').`, 'InvalidStateError');
      if (t.state !== 4 || t.error) return null;
      return cached(t, 'document', () => documentOf(this, states.get(this), t));
    }

    open(...a) {
      const s = states.get(this);
      if (!s) return super.open(...a);
      const shown = this.readyState;
      super.open(...a); // checks the arguments and resolves the URL as the browser does
      const t = s.t;
      if (t) {
        s.t = null;
        stop(t, 'abort');
      }
      s.args = { method: String(a[0]), url: String(a[1]), async: a.length < 3 || !!a[2], auth: a[3] != null || a[4] != null, base: document.baseURI };
      s.headers = [];
      s.quiet = false;
      s.sent = false;
      if (s.shift) { // undo a late delegation's shortened clock
        s.shift = 0;
        super.timeout = s.timeout;
      }
      // The native object was already OPENED, so only we can tell the page.
      if (t && shown !== 1) fire(this, 'readystatechange');
    }

    setRequestHeader(...a) {
      const s = states.get(this);
      if (s && s.t) throw notOpened('setRequestHeader');
      super.setRequestHeader(...a);
      if (s) s.headers.push(String(a[0]));
    }

    overrideMimeType(...a) {
      const s = states.get(this);
      const t = s && s.t;
      if (t && t.state >= 3) throw domError("Failed to execute 'overrideMimeType' on 'XMLHttpRequest': MimeType cannot be overridden when the state is LOADING or DONE.", 'InvalidStateError');
      super.overrideMimeType(...a);
      if (!s) return;
      s.mime = String(a[0]);
      if (t) Object.assign(t, { decoder: null, text: '', textBytes: 0, next: 0 }); // decode again with the new charset
    }

    getResponseHeader(...a) {
      const t = transferOf(this);
      if (!t) return super.getResponseHeader(...a);
      if (!a.length) throw new TypeError("Failed to execute 'getResponseHeader' on 'XMLHttpRequest': 1 argument required, but only 0 present.");
      const v = t.headers && t.state >= 2 && t.headers.get(String(a[0]).toLowerCase());
      return typeof v === 'string' ? v : null;
    }

    getAllResponseHeaders() {
      const t = transferOf(this);
      if (!t) return super.getAllResponseHeaders();
      return t.state >= 2 ? allHeaders(t.headers) : '';
    }

    abort() {
      const s = states.get(this);
      const t = s && s.t;
      if (!t) return super.abort();
      if ((t.state === 1 && t.sent) || t.state === 2 || t.state === 3) requestError(this, s, t, 'abort');
      if (s.t === t && t.state === 4) { // no event for this change
        t.state = 0;
        forget(t);
      }
    }

    send(...a) {
      const s = states.get(this);
      if (!s) return super.send(...a);
      if (s.t) throw notOpened('send');
      const u = !s.sent && s.args && super.readyState === 1 && shareable(this, s);
      if (!u) {
        s.sent = true;
        s.stats = delegatedStats(0);
        return super.send(...a);
      }
      const t = {
        state: 1, sent: true, ac: new AbortController(), started: performance.now(), timer: 0, deferred: 0,
        status: 0, statusText: '', headers: null, responseURL: '', loaded: 0, length: 0, shown: -1, lastProgress: -Infinity,
        decoder: null, text: '', textBytes: 0, next: 0, bytes: null, blob: null, cache: null, error: false,
      };
      s.t = t;
      s.stats = delegatedStats(0);
      if (s.timeout) t.timer = setTimeout(() => onTimeout(this, s, t), s.timeout);
      fire(this, 'loadstart', 0, 0);
      if (s.t !== t || t.state !== 1) return; // a loadstart handler aborted or reopened
      // Steps run one after another, and only while this transfer is current.
      let chain = Promise.resolve();
      const step = (f) => {
        chain = chain.then(() => (s.t === t && t.sent ? f() : undefined)).catch((err) => {
          if (s.t === t && t.sent) requestError(this, s, t, 'error');
          console.error('p2pxhr:', err); // eslint-disable-line no-console
        });
      };
      client.transfer(u, {
        onManifest: (m) => step(() => headersReceived(this, s, t, m, u)),
        onProgress: (st, store) => step(async () => {
          s.stats = statsOf(st);
          t.loaded = st.loaded;
          await extendText(this, s, t, store);
          progressStep(this, s, t);
        }),
      }, t.ac.signal).then(
        (r) => step(() => (r ? finish(this, s, t, r) : t.state === 1 && delegateLate(this, s, t, a))),
        () => step(() => {
          if (t.ac.signal.aborted) return;
          // Nothing shown yet: the native request tries its luck.
          if (t.state === 1) return delegateLate(this, s, t, a);
          requestError(this, s, t, 'error');
        }),
      );
    }
  }

  // shareable is the URL when this request may be carried by the client.
  function shareable(x, s) {
    const a = s.args;
    if (a.method.toUpperCase() !== 'GET' || !a.async || a.auth || nget(x, 'withCredentials') || nget(x, 'responseType') === 'document') return null;
    let url;
    try { url = new URL(a.url, a.base); } catch { return null; }
    return client.shareable('GET', url, false, s.headers);
  }

  // headersReceived is XHR's "process response" for the manifest's response.
  function headersReceived(x, s, t, m, u) {
    if (t.state !== 1) return;
    t.headers = sharedHeaders(m);
    const len = Number(t.headers.get('content-length'));
    t.length = Number.isSafeInteger(len) && len >= 0 ? len : 0;
    Object.assign(t, { state: 2, status: 200, statusText: 'OK', responseURL: u.href });
    fire(x, 'readystatechange');
  }

  // delegateLate sends the native request after all: the module does not
  // share the resource, or the transfer failed before the headers.
  function delegateLate(x, s, t, args) {
    stop(t);
    s.t = null;
    s.sent = true;
    if (s.timeout) {
      s.shift = Math.max(1, Math.round(performance.now() - t.started));
      nset(x, 'timeout', Math.max(1, s.timeout - s.shift));
    }
    s.quiet = true; // the page saw our loadstart already
    N.send.apply(x, args);
  }

  function onTimeout(x, s, t) {
    if (s.t === t && t.sent && t.state < 4) requestError(x, s, t, 'timeout');
  }

  // As the browser's own: the name, and attributes and methods that
  // for-in sees (Web IDL members are enumerable).
  Object.defineProperty(XMLHttpRequest, 'name', { value: 'XMLHttpRequest' });
  for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(XMLHttpRequest.prototype))) {
    if (k !== 'constructor' && k !== 'stats') Object.defineProperty(XMLHttpRequest.prototype, k, { ...d, enumerable: true });
  }
  return XMLHttpRequest;
}
