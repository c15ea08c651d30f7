// peer5.Request: a drop-in XMLHttpRequest. A shareable GET is carried by
// Client.transfer (HTTP ranges + neighbours, verified); anything else (or a
// resource the module does not share) goes to a native XMLHttpRequest whose
// events and state are passed through, so pages see the same behaviour.
import { delegatedStats, progressEvent } from './events.js';

const EVENTS = ['readystatechange', 'loadstart', 'progress', 'abort', 'error', 'load', 'timeout', 'loadend'];
const PASSED = ['readyState', 'status', 'statusText', 'response', 'responseText', 'responseURL', 'responseXML'];
const invalid = (what) => new DOMException(`Failed to execute '${what}' on 'XMLHttpRequest': The object's state must be OPENED.`, 'InvalidStateError');

export function makeRequest(client) {
  class Request extends EventTarget {
    constructor() {
      super();
      this.responseType = '';
      this.timeout = 0;
      this.withCredentials = false;
      this.upload = new EventTarget();
      this.stats = { bytesFromHttp: 0, bytesFromPeers: 0, peers: 0 };
      this._s = { readyState: 0, status: 0, statusText: '', response: null, responseText: '', responseURL: '', responseXML: null };
      // Handler properties run as listeners added first, as with XHR.
      for (const t of EVENTS) {
        this['on' + t] = null;
        super.addEventListener(t, (e) => typeof this['on' + t] === 'function' && this['on' + t].call(this, e));
      }
    }

    open(method, url, async, user, password) {
      this._stop();
      this._x = null;
      this._sent = false;
      this._args = [method, url, async !== false, user, password];
      this._headers = [];
      this._mime = null;
      Object.assign(this._s, { readyState: 1, status: 0, statusText: '', response: null, responseText: '', responseURL: '' });
      this._headersIn = null;
      this._fire('readystatechange');
    }

    setRequestHeader(name, value) {
      if (this._s.readyState !== 1 || this._sent) throw invalid('setRequestHeader');
      this._headers.push([name, value]);
    }

    overrideMimeType(mime) { this._mime = mime; }

    send(body) {
      if (this._s.readyState !== 1 || this._sent) throw invalid('send');
      const [method, url, async, user] = this._args;
      const u = async && !user && body == null && this.responseType !== 'document' && !this._mime &&
        client.shareable(method, url, this.withCredentials, this._headers.map((h) => h[0]));
      if (!u) return this._delegate(body, false);
      this._sent = true;
      this._s.responseURL = u.href;
      const ac = (this._ac = new AbortController());
      this._fire('loadstart', 0, 0);
      if (this.timeout > 0) this._timer = setTimeout(() => this._fail('timeout'), this.timeout);
      this._started = Date.now();
      this._lastProgress = 0;
      client.transfer(u, { onManifest: (m) => this._headersReceived(m), onProgress: (s) => this._progress(s) }, ac.signal)
        .then((r) => (ac.signal.aborted ? null : r ? this._finish(r) : this._delegate(null, true)))
        .catch((err) => {
          if (ac.signal.aborted) return;
          // Nothing shown yet: a native request tries its luck (and reports its own errors).
          if (this._s.readyState < 2) return this._delegate(null, true);
          this._fail('error', err);
        });
    }

    abort() {
      if (this._x) return this._x.abort();
      const st = this._s.readyState;
      if (this._sent && st !== 4) this._fail('abort');
      if (this._s.readyState === 4) this._s.readyState = 0; // as XHR: no event for this change
    }

    getResponseHeader(name) {
      if (this._x) return this._x.getResponseHeader(name);
      const h = this._headersIn;
      return (h && h.get(String(name).toLowerCase())) ?? null;
    }

    getAllResponseHeaders() {
      if (this._x) return this._x.getAllResponseHeaders();
      const h = this._headersIn;
      return h ? [...h].sort().map(([k, v]) => `${k}: ${v}\r\n`).join('') : '';
    }

    _headersReceived(m) {
      if (this._s.readyState !== 1) return;
      const h = new Map([['content-length', String(m.size)], ['content-type', m.contentType || 'application/octet-stream']]);
      if (m.etag) h.set('etag', m.etag);
      if (m.lastModified) h.set('last-modified', m.lastModified);
      this._headersIn = h;
      Object.assign(this._s, { readyState: 2, status: 200, statusText: 'OK' });
      this._fire('readystatechange');
    }

    _progress(s) {
      const ac = this._ac;
      this._copyStats(s);
      const now = Date.now();
      // XHR fires progress at most every 50 ms.
      if (now - this._lastProgress >= 50) {
        this._lastProgress = now;
        this._fire('progress', s.loaded, s.total);
      }
      if (this._ac !== ac) return; // a handler aborted or reopened the request
      this._s.readyState = 3;
      this._fire('readystatechange');
    }

    _copyStats(s) {
      this.stats = { bytesFromHttp: s.bytesFromHttp, bytesFromPeers: s.bytesFromPeers, peers: s.peers };
    }

    async _finish({ blob, stats }) {
      let response = null, text = '';
      const type = this.responseType;
      if (type === 'blob') response = blob;
      else if (type === 'arraybuffer') response = await blob.arrayBuffer();
      else {
        text = await blob.text();
        if (type === 'json') {
          try { response = JSON.parse(text); } catch { response = null; }
        } else response = text;
      }
      if (!this._ac || this._ac.signal.aborted) return; // aborted while converting
      this._stop();
      this._copyStats(stats);
      Object.assign(this._s, { response, responseText: text, readyState: 4 });
      this._fire('progress', stats.total, stats.total);
      this._fire('readystatechange');
      this._fire('load', stats.total, stats.total);
      this._fire('loadend', stats.total, stats.total);
    }

    // _fail runs XHR's "request error steps" for abort, timeout or error.
    _fail(type) {
      this._stop(type); // the reason lets the report tell a timeout (error) from an abort
      Object.assign(this._s, { readyState: 4, status: 0, statusText: '', response: null, responseText: '' });
      this._headersIn = null;
      this._fire('readystatechange');
      this._fire(type, 0, 0);
      this._fire('loadend', 0, 0);
    }

    _stop(reason) {
      if (this._ac) this._ac.abort(reason);
      this._ac = null;
      clearTimeout(this._timer);
    }

    // _delegate hands the request to a native XMLHttpRequest; `started`
    // means loadstart was already fired here, so the native one is dropped.
    _delegate(body, started) {
      const [method, url, async, user, password] = this._args;
      const x = new XMLHttpRequest();
      x.open(method, url, async, user, password);
      for (const [k, v] of this._headers) x.setRequestHeader(k, v);
      if (this._mime) x.overrideMimeType(this._mime);
      if (async) x.responseType = this.responseType;
      x.withCredentials = this.withCredentials;
      let timeout = this.timeout;
      if (started && timeout > 0) timeout = Math.max(1, timeout - (Date.now() - this._started));
      this._stop();
      if (async) x.timeout = timeout;
      this._x = x;
      this._sent = true;
      for (const t of EVENTS) {
        x.addEventListener(t, (e) => {
          if (this._x !== x || (started && t === 'loadstart')) return;
          if (t === 'load') this.stats = delegatedStats(e.loaded);
          this.dispatchEvent(e instanceof ProgressEvent ? progressEvent(t, e.loaded, e.total, this.stats) : new Event(t));
        });
      }
      x.send(body);
    }

    _fire(type, loaded, total) {
      this.dispatchEvent(loaded === undefined ? new Event(type) : progressEvent(type, loaded, total, this.stats));
    }
  }

  for (const p of PASSED) {
    Object.defineProperty(Request.prototype, p, {
      get() {
        if (this._x) return this._x[p];
        if (p === 'responseText' && this.responseType !== '' && this.responseType !== 'text') {
          throw new DOMException("The value is only accessible if the object's 'responseType' is '' or 'text'.", 'InvalidStateError');
        }
        if (p === 'response' && this._s.readyState !== 4 && (this.responseType === '' || this.responseType === 'text')) return this._s.responseText;
        return this._s[p];
      },
    });
  }
  Object.assign(Request, { UNSENT: 0, OPENED: 1, HEADERS_RECEIVED: 2, LOADING: 3, DONE: 4 });
  return Request;
}
