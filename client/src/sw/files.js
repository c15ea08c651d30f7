// Files is the service worker's side of service worker mode: the manifests
// it asked for, the verified blocks it holds, and where each block it needs
// comes from. A block comes, in this order, from the worker's memory, from
// the browser's persistent cache (cache.js, verified when read), from a
// page of the site carrying the swarm (a "bridge", bridge.js: a worker has
// no RTCPeerConnection, so peers are reached through a page, which also
// falls back to HTTP under its scheduler) and from the worker's own HTTP
// range requests: at once for a block a stream is waiting for when no page
// can help, after a while for one read ahead, and whenever a page fails to
// deliver in time. Every block is verified here before it is served,
// wherever it came from.
import { BlockCache } from '../cache.js';
import { verifyBlock, blockRange } from '../hash.js';
import { fetchVerifiedBlock, OriginChanged } from '../httpblock.js';
import { valid } from '../manifest.js';
import { sendReport } from '../report.js';

const MANIFEST_TTL = 5000, REFUSED_TTL = 300e3, MISSING_TTL = 30e3, MAX_MANIFESTS = 512;
const MEMORY = 64 << 20; // verified blocks kept for streams re-reading them (a seek back)
const HTTP_PARALLEL = 2, HTTP_TRIES = 3;
// How long a block may wait for a page to carry it: one read ahead waits
// for a page to appear; one asked of a page is fetched here if the page
// has not delivered it (a page frozen or gone, a stuck transfer).
const BRIDGE_WAIT = 1500, BRIDGE_DEADLINE = 8000, URGENT_DEADLINE = 3000, TICK = 200;
const PING_EVERY = 2000, STATS_EVERY = 200, URGENT_BLOCKS = 2, LISTING_TTL = 5000, EARLY_KEEP = 30e3;

const now = () => performance.now();

export class Files {
  /** @param cfg the module's settings: {prefix, paths, navigate} */
  constructor(cfg) {
    this.cfg = cfg;
    this.manifests = new Map(); // path+query → {at, ttl, m|null, p}
    this.files = new Map(); // swarm id → FileState
    this.memory = new Map(); // `${id}:${i}` → bytes, least recently used first
    this.memoryBytes = 0;
    this.bridges = new Map(); // client id → {id, client, told: Set of swarm ids}
    this.passing = new Set(); // pages that said P2P is off for them: their requests go to the network
    this.unable = new Set(); // pages that cannot carry a swarm (no WebRTC): the worker fetches for them at once
    this.pinged = new Map(); // client id → when asked to carry the swarm
    this.clientStats = new Map(); // client id → {requests, bytesFromHttp, bytesFromPeers, bytesFromCache}
    this.statsTimer = 0;
    this.cacheP = null;
    this.listP = null;
    this.listAt = 0;
    this.earlyBlocks = new Map(); // `${path+query}#${i}` → Promise of bytes fetched before the manifest was in
  }

  /** Whether requests of page clientId go to the network untouched. */
  passes(clientId) { return this.passing.has(clientId); }

  /** The browser's persistent cache, opened on first use; read only here. */
  cache() {
    return this.cacheP || (this.cacheP = BlockCache.open(2 ** 30).catch(() => null));
  }

  /**
   * What the persistent cache holds (swarm id → block names), listed at
   * most every LISTING_TTL: asked for as a request comes in, while its
   * manifest is fetched, so a stream's first block does not wait for it.
   */
  listing() {
    if (this.listP && now() - this.listAt < LISTING_TTL) return this.listP;
    this.listAt = now();
    return (this.listP = this.cache().then((c) => c && c.be.list()).catch(() => null));
  }

  /**
   * The manifest of same-origin URL u, or null when the module does not
   * share it. Answers are kept a little (a video's range requests come in
   * bursts), refusals longer; a failure to ask (the server busy or down)
   * is not kept.
   */
  manifest(u) {
    const key = u.pathname + u.search;
    const e = this.manifests.get(key);
    if (e && (e.p || now() - e.at < e.ttl)) return e.p || Promise.resolve(e.m);
    const entry = { at: 0, ttl: 0, m: null, p: null };
    entry.p = fetch(this.cfg.prefix + 'manifest?url=' + encodeURIComponent(key), { credentials: 'omit', cache: 'no-cache' })
      .then(async (res) => {
        let m = null;
        if (res.status === 200) {
          m = await res.json().catch(() => null);
          if (m && valid(m)) m.responseDate = res.headers.get('date');
          else m = null;
        }
        entry.ttl = m ? MANIFEST_TTL : res.status === 403 ? REFUSED_TTL : res.status === 404 || res.status === 400 ? MISSING_TTL : 0;
        entry.m = m;
        return m;
      }, () => null)
      .finally(() => { entry.at = now(); entry.p = null; });
    this.manifests.delete(key);
    this.manifests.set(key, entry);
    if (this.manifests.size > MAX_MANIFESTS) this.manifests.delete(this.manifests.keys().next().value);
    return entry.p;
  }

  /**
   * early fetches the block where a media range starts while the
   * manifest is asked for, when no fresh manifest is at hand: the first
   * bytes of a <video> then wait for one round trip to the origin, as
   * without the worker, not two. The block is verified once the manifest
   * is in (takeEarly); a file the module does not share costs that block.
   */
  early(t) {
    const bs = this.cfg.blockSize, key = t.url.pathname + t.url.search;
    const e = this.manifests.get(key);
    if (!bs || !t.media || !t.range || !('first' in t.range) || (e && !e.p && now() - e.at < e.ttl)) return;
    const i = Math.floor(t.range.first / bs), off = i * bs;
    if (this.earlyBlocks.has(key + '#' + i) || (e && e.m && this.memory.has(e.m.id + ':' + i))) return;
    const p = fetch(t.url.href, { headers: { Range: `bytes=${off}-${off + bs - 1}` }, credentials: 'omit', cache: 'no-store' })
      .then(async (res) => (res.status === 206 && (res.headers.get('content-range') || '').startsWith(`bytes ${off}-`) ? new Uint8Array(await res.arrayBuffer()) : null))
      .catch(() => null);
    this.earlyBlocks.set(key + '#' + i, p);
    setTimeout(() => this.earlyBlocks.delete(key + '#' + i), EARLY_KEEP);
  }

  /** The early fetch of block i of path+query key, once: a Promise of its bytes (unverified) or null. */
  takeEarly(key, i) {
    const p = this.earlyBlocks.get(key + '#' + i);
    this.earlyBlocks.delete(key + '#' + i);
    return p || null;
  }

  /** Forgets the manifest of path+query key (its file changed at the origin). */
  forget(key) { this.manifests.delete(key); }

  file(m, url) {
    let f = this.files.get(m.id);
    if (!f) this.files.set(m.id, (f = new FileState(this, m, url)));
    return f;
  }

  // The memory of verified blocks, least recently used first.

  // rec is {bytes, src}: where the block came from, until the first
  // stream that reads it counts it so (take); read again, it comes from
  // the cache.
  remember(id, i, rec) {
    const k = id + ':' + i;
    if (this.memory.has(k)) return;
    this.memory.set(k, rec);
    this.memoryBytes += rec.bytes.length;
    for (const [key, b] of this.memory) {
      if (this.memoryBytes <= MEMORY) break;
      this.memory.delete(key);
      this.memoryBytes -= b.bytes.length;
    }
  }

  /** Block i of swarm id from memory: {bytes, src}, or undefined. */
  recall(id, i) {
    const k = id + ':' + i;
    const b = this.memory.get(k);
    if (b) { this.memory.delete(k); this.memory.set(k, b); }
    return b;
  }

  // Pages carrying the swarm for the worker (bridges).

  /** The bridge for a request of page clientId: its own, else any. */
  bridgeFor(clientId) {
    const own = this.bridges.get(clientId);
    if (own) return own;
    let last = null;
    for (const b of this.bridges.values()) last = b;
    return last;
  }

  /**
   * Asks page clientId (or, when it is not one, every page of the site)
   * to carry the swarm; a page answers by loading its bridge.
   */
  ping(clientId) {
    const key = clientId || '*';
    if (now() - (this.pinged.get(key) || -Infinity) < PING_EVERY) return;
    this.pinged.set(key, now());
    const ask = (c) => { try { c.postMessage({ p2pxhr: 'ping' }); } catch { /* gone */ } };
    const all = () => self.clients.matchAll({ type: 'window' }).then((cs) => cs.forEach(ask));
    (clientId ? self.clients.get(clientId).then((c) => (c ? ask(c) : all())) : all()).catch(() => {});
  }

  /** A message from a page: e.data.p2pxhr is its type. */
  message(e) {
    const d = e.data, id = e.source && e.source.id;
    if (!id) return;
    switch (d.p2pxhr) {
      case 'who': // a page asks whether the site's own worker imported this one
        e.source.postMessage({ p2pxhr: 'ours' });
        break;
      case 'bridge':
        this.passing.delete(id);
        this.bridges.set(id, { id, client: e.source, told: new Set() });
        for (const f of this.files.values()) f.bridged();
        break;
      case 'none': // no WebRTC there
        this.unable.add(id);
        break;
      case 'off': // P2P is off for that page, or it is in the A/B "http" group
        this.passing.add(id);
        this.bridges.delete(id);
        break;
      case 'bye': // the page went (closed, navigated, frozen in the back/forward cache)
        this.bridges.delete(id);
        for (const f of this.files.values()) f.lost(id);
        break;
      case 'block': {
        const f = this.files.get(d.id);
        if (f && d.bytes instanceof ArrayBuffer) f.fromBridge(d.i, new Uint8Array(d.bytes), d.from, id);
        break;
      }
      case 'fail': {
        const f = this.files.get(d.id);
        if (f) f.lost(id);
        break;
      }
    }
  }

  /** Posts msg to bridge b, with the manifest the first time it hears of file f. */
  tell(b, f, msg, transfer) {
    if (!b.told.has(f.m.id)) {
      b.told.add(f.m.id);
      msg.m = f.m;
      msg.url = f.url;
    }
    try {
      b.client.postMessage({ p2pxhr: msg.type, ...msg }, transfer || []);
    } catch {
      this.bridges.delete(b.id);
    }
  }

  // Figures: per page, pushed to it (peer5.stats().serviceWorker), and
  // one report per response that moved bytes (POST {prefix}stats).

  count(clientId, key, n) {
    if (!clientId) return;
    let s = this.clientStats.get(clientId);
    if (!s) this.clientStats.set(clientId, (s = { requests: 0, bytesFromHttp: 0, bytesFromPeers: 0, bytesFromCache: 0 }));
    s[key] += n;
    if (!this.statsTimer) this.statsTimer = setTimeout(() => this.pushStats(), STATS_EVERY);
  }

  async pushStats() {
    this.statsTimer = 0;
    for (const [id, s] of this.clientStats) {
      const c = await self.clients.get(id).catch(() => null);
      if (c) c.postMessage({ p2pxhr: 'stats', stats: { ...s } });
      else this.clientStats.delete(id);
    }
  }

  report(f, r, outcome) {
    const s = r.from;
    if (!(s.http + s.peers)) return; // nothing moved: no download to report
    sendReport(this.cfg.prefix, {
      swarm: f.m.id, group: 'p2p', via: 'sw', bytesFromHttp: s.http, bytesFromPeers: s.peers, bytesFromCache: s.cache,
      bytesUploaded: 0, durationMs: Math.round(now() - r.start), outcome,
    });
  }
}

// FileState is one manifest's blocks in the worker: the streams reading
// it, and the blocks asked for and not yet here.
class FileState {
  constructor(files, m, url) {
    this.files = files;
    this.m = m;
    this.url = url; // path and query
    this.pending = new Map(); // block → {i, urgent, via, since, deadline, bridge, tries, promise, resolve, reject}
    this.streams = new Set();
    this.httpQueue = [];
    this.httpBusy = 0;
    this.timer = 0;
    this.urgentSent = new Map(); // bridge id → the urgent list it was told last
    this.namesP = null;
    this.unshared = new Set(); // blocks fetched here that no page has yet
  }

  /** The names of this file's blocks in the persistent cache (looked up once). */
  cachedNames() {
    return this.namesP || (this.namesP = this.files.listing().then((all) => (all && all.get(this.m.id)) || null));
  }

  /**
   * Block i, verified: {bytes, src} with src 'cache' (the worker's memory
   * or the persistent cache), 'peers' or 'http' (until a reader counts it
   * and sets it to 'cache'). urgent: a stream waits for it now.
   */
  get(i, urgent, clientId) {
    const mem = this.files.recall(this.m.id, i);
    if (mem) return Promise.resolve(mem);
    let p = this.pending.get(i);
    if (!p) {
      p = { i, urgent, via: '', since: now(), deadline: 0, bridge: '', tries: 0, client: clientId };
      p.promise = new Promise((resolve, reject) => { p.resolve = resolve; p.reject = reject; });
      p.promise.catch(() => {}); // a block read ahead that nobody reads must not be an unhandled rejection
      this.pending.set(i, p);
      this.start(p);
    } else if (urgent && !p.urgent) {
      p.urgent = true;
      if (p.via === 'waiting' || p.via === 'http') this.http(p);
      this.sendUrgent();
    }
    return p.promise;
  }

  async start(p) {
    const early = this.files.takeEarly(this.url, p.i);
    const b = early && (await early);
    if (b && (await verifyBlock(this.m, p.i, b))) {
      this.done(p.i, b, 'http');
      return this.share(p.i, b);
    }
    const names = await this.cachedNames();
    if (names && names.has(String(p.i))) {
      const cache = await this.files.cache();
      const b = cache && (await cache.read(this.m, p.i).catch(() => null));
      if (b) return this.done(p.i, b, 'cache');
    }
    if (this.pending.get(p.i) === p) this.route(p);
  }

  // route sends a block to a page carrying the swarm, or fetches it here.
  route(p) {
    const b = this.files.bridgeFor(p.client);
    if (b) return this.ask(b, p);
    this.files.ping(p.client);
    if (p.urgent || this.files.unable.has(p.client)) return this.http(p);
    p.via = 'waiting';
    p.deadline = now() + BRIDGE_WAIT;
    this.tickSoon();
  }

  ask(b, p) {
    p.via = 'bridge';
    p.bridge = b.id;
    p.deadline = now() + (p.urgent ? URGENT_DEADLINE : BRIDGE_DEADLINE);
    if (!b.want) {
      b.want = new Map();
      queueMicrotask(() => {
        const want = b.want;
        b.want = null;
        for (const [f, blocks] of want) this.files.tell(b, f, { type: 'want', id: f.m.id, blocks });
        this.sendUrgent();
      });
    }
    if (!b.want.has(this)) b.want.set(this, []);
    b.want.get(this).push(p.i);
    this.tickSoon();
  }

  // sendUrgent tells each page carrying blocks of this file which ones
  // streams wait for now, newest stream first, so its scheduler takes
  // them before anything else (and from HTTP at once if no peer has them).
  sendUrgent() {
    const urgent = [];
    for (const r of [...this.streams].reverse()) {
      for (let i = r.next; i < r.next + URGENT_BLOCKS && i <= r.last; i++) {
        const p = this.pending.get(i);
        if (p && p.via === 'bridge' && !urgent.includes(i)) urgent.push(i);
      }
    }
    for (const b of this.files.bridges.values()) {
      const mine = urgent.filter((i) => this.pending.get(i).bridge === b.id);
      const key = mine.join(',');
      if ((this.urgentSent.get(b.id) || '') === key) continue;
      this.urgentSent.set(b.id, key);
      this.files.tell(b, this, { type: 'urgent', id: this.m.id, blocks: mine });
    }
  }

  http(p) {
    p.via = 'http';
    if (!this.httpQueue.includes(p)) this.httpQueue.push(p);
    this.pumpHTTP();
  }

  // pumpHTTP runs the worker's own range requests, urgent blocks first,
  // then in order.
  pumpHTTP() {
    while (this.httpBusy < HTTP_PARALLEL) {
      this.httpQueue = this.httpQueue.filter((p) => this.pending.get(p.i) === p);
      if (!this.httpQueue.length) return;
      this.httpQueue.sort((a, b) => (b.urgent - a.urgent) || a.i - b.i);
      const p = this.httpQueue.shift();
      this.httpBusy++;
      fetchVerifiedBlock(location.origin + this.url, this.m, p.i)
        .then((b) => {
          if (this.pending.get(p.i) !== p) return; // a page delivered it meanwhile
          this.done(p.i, b, 'http');
          this.share(p.i, b);
        })
        .catch((err) => this.httpFailed(p, err))
        .finally(() => { this.httpBusy--; this.pumpHTTP(); });
    }
  }

  httpFailed(p, err) {
    if (this.pending.get(p.i) !== p) return;
    if (err instanceof OriginChanged) return this.fail(err);
    if (++p.tries < HTTP_TRIES) return setTimeout(() => this.pending.get(p.i) === p && this.http(p), 200 * p.tries);
    this.pending.delete(p.i);
    p.reject(err);
  }

  // fail ends every stream of a file that changed at the origin: its
  // responses promised bytes of a version that is gone. The next request
  // asks for the new manifest.
  fail(err) {
    this.files.forget(this.url);
    this.files.files.delete(this.m.id);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Gives a block fetched here to a page carrying the swarm: it seeds it, and keeps it in the persistent cache. */
  // Blocks fetched before any page carried the swarm (a visitor's first
  // request, the page still loading its bridge) go to the first page that
  // does, while the worker's memory holds them.
  share(i, bytes) {
    const b = this.files.bridgeFor('');
    if (!b) return this.unshared.add(i);
    const copy = bytes.slice();
    this.files.tell(b, this, { type: 'put', id: this.m.id, i, bytes: copy.buffer }, [copy.buffer]);
  }

  /** A page carries the swarm now: it gets the blocks fetched before. */
  bridged() {
    for (const i of this.unshared) {
      const rec = this.files.memory.get(this.m.id + ':' + i);
      if (rec) this.share(i, rec.bytes);
    }
    this.unshared.clear();
    this.tick();
  }

  async fromBridge(i, bytes, from, bridgeId) {
    if (!(await verifyBlock(this.m, i, bytes))) {
      const p = this.pending.get(i);
      if (p && p.bridge === bridgeId) this.http(p); // a page's bug, never a wrong byte served
      return;
    }
    this.done(i, bytes, from === 'peers' ? 'peers' : from === 'cache' ? 'cache' : 'http');
  }

  done(i, bytes, src) {
    const rec = { bytes, src };
    this.files.remember(this.m.id, i, rec);
    const p = this.pending.get(i);
    if (!p) return;
    this.pending.delete(i);
    p.resolve(rec);
  }

  /** Page bridgeId is gone or failed: what it was asked for goes elsewhere. */
  lost(bridgeId) {
    this.urgentSent.delete(bridgeId);
    for (const p of this.pending.values()) if (p.via === 'bridge' && p.bridge === bridgeId) this.route(p);
  }

  tickSoon() {
    if (!this.timer) this.timer = setTimeout(() => { this.timer = 0; this.tick(); }, TICK);
  }

  // tick moves on blocks that waited too long: for a page to appear, or
  // for the page asked to deliver.
  tick() {
    const t = now();
    for (const p of this.pending.values()) {
      if (p.via === 'waiting') {
        const b = this.files.bridgeFor(p.client);
        if (b) this.ask(b, p);
        else if (t >= p.deadline) this.http(p);
      } else if (p.via === 'bridge' && (t >= p.deadline || !this.files.bridges.has(p.bridge))) {
        this.http(p); // the page may still deliver: whichever comes first
      }
    }
    if ([...this.pending.values()].some((p) => p.via === 'waiting' || p.via === 'bridge')) this.tickSoon();
  }

  /**
   * A response body for bytes [start, end]: verified blocks in order,
   * sliced to the range, each waited for as the reader asks; the blocks
   * after the one being read are asked for ahead (media: a few, so a
   * paused <video> costs little; anything else: more, for throughput).
   */
  stream(start, end, media, clientId) {
    const m = this.m, bs = m.blockSize;
    const r = { start: now(), pos: start, next: Math.floor(start / bs), last: Math.floor(end / bs), ahead: media ? 8 : 32,
      from: { http: 0, peers: 0, cache: 0 }, ended: false };
    const finish = (outcome) => {
      if (r.ended) return;
      r.ended = true;
      this.streams.delete(r);
      this.sendUrgent();
      this.files.report(this, r, outcome);
    };
    this.files.count(clientId, 'requests', 1);
    return new ReadableStream({
      start: () => { this.streams.add(r); },
      pull: async (c) => {
        if (r.pos > end) {
          finish('ok');
          return c.close();
        }
        const i = r.next;
        for (let j = i; j <= Math.min(r.last, i + r.ahead); j++) this.get(j, j < i + URGENT_BLOCKS, clientId);
        let got;
        try {
          got = await this.get(i, true, clientId);
        } catch (err) {
          finish('error');
          throw err;
        }
        if (r.ended) return;
        const src = got.src;
        got.src = 'cache'; // counted once where it came from
        const key = src === 'http' ? 'bytesFromHttp' : src === 'peers' ? 'bytesFromPeers' : 'bytesFromCache';
        r.from[src] += got.bytes.length;
        this.files.count(clientId, key, got.bytes.length);
        const [off] = blockRange(m, i);
        const to = Math.min(end + 1 - off, got.bytes.length);
        c.enqueue(got.bytes.slice(r.pos - off, to));
        r.pos = off + to;
        r.next = i + 1;
        this.sendUrgent();
      },
      cancel: () => finish('abort'),
    }, { highWaterMark: 1 });
  }
}
