// Seeder keeps the site's downloads useful after the page that fetched
// them is gone. It fills and reads the persistent cache (cache.js) for the
// page's downloads, and in one tab of the browser — the leader, chosen
// with a Web Lock and handed over when that tab goes — it joins the swarms
// of the files the cache holds as a seeder (it never downloads there) and
// serves them, within the visitor's limits: so many neighbours at once, an
// upload budget per visit and per day, nothing on a metered connection or
// while the tab has been hidden for long, and nothing without the site's
// policy and the visitor's consent allowing it (consent.js).
import { BlockCache } from './cache.js';
import { fetchManifest } from './manifest.js';
import * as consent from './consent.js';

const LOCK = 'p2pxhr-seeder', SPENT = 'p2pxhr-seeded';
const VISIT_GAP = 30 * 60e3, TICK = 5000, IDLE = 30000, RESCAN = 60000, POLICY_WAIT = 5000;

const now = () => Date.now();

// CachedStore is a seeding swarm's view of its cache entry: which blocks
// are there, read (and verified) on demand, never held in memory.
class CachedStore {
  constructor(cache, m, names) {
    this.cache = cache;
    this.manifest = m;
    this.held = m.blocks.map((_, i) => names.has(String(i)));
    this.count = this.held.filter(Boolean).length;
  }

  get complete() { return this.count === this.held.length; }

  has(i) { return !!this.held[i]; }

  have() { return this.held.slice(); }

  put() { return false; }

  async read(i) {
    const b = this.held[i] ? await this.cache.read(this.manifest, i) : null;
    if (!b && this.held[i]) { this.held[i] = false; this.count--; } // deleted or failed its hash
    return b;
  }

  clear() { /* the blocks stay in the cache */ }
}

// SeedSwarm serves one cached file. Its neighbours are admitted by the
// seeder (a place among seedPeers) once their hello shows they lack
// something it holds, and let go when they lack nothing more. Swarm comes
// from the caller, so this module needs none of the page's download code.
const seedSwarm = (Swarm) => class SeedSwarm extends Swarm {
  constructor(m, url, ctx, store, seeder) {
    super(m, url, ctx, { store, seed: true });
    this.seeder = seeder;
  }

  serving() { return true; }

  peerMessage(c, m) {
    const held = this.store.held;
    if (m.type === 'hello') c.lack = held.filter((h, i) => h && !c.has[i]).length;
    else if (m.type === 'have' && held[m.block] && c.lack > 0) c.lack--;
    else return;
    this.seeder.admit(c);
  }

  connClosed(c) {
    super.connClosed(c);
    this.seeder.admitted.delete(c);
  }

  uploaded(n) {
    super.uploaded(n);
    this.seeder.spend(n);
  }

  coordinatorMessage(m) {
    if (m.type === 'error' && m.code === 'unknown-swarm') this.seeder.unknown(this);
    else super.coordinatorMessage(m);
  }
};

export class Seeder {
  /** @param client the page's Client; @param Swarm its swarm class (swarm.js) */
  constructor(client, Swarm) {
    this.client = client;
    this.SeedSwarm = seedSwarm(Swarm);
    this.config = client.config;
    this.swarms = new Map(); // seeding swarms by id
    this.admitted = new Set(); // neighbours being served
    this.leading = false;
    this.uploaded = 0;
    this.pending = 0; // uploaded, not yet added to the visit and day record
    this.cachedBytes = 0;
    this.why = '';
    this.rechecked = new Set();
    this.failed = new Set();
    this.hiddenSince = document.hidden ? performance.now() : 0;
    this.scanning = Promise.resolve();
    const c = this.config;
    this.cacheP = c.p2p && c.group !== 'http' && self.RTCPeerConnection && self.crypto && crypto.subtle
      ? BlockCache.open(c.cacheSize) : Promise.resolve(null);
    this.ch = consent.channel((m) => { if (m.type === 'cached') this.update(); });
    addEventListener('pagehide', () => this.abdicate());
    addEventListener('pageshow', (e) => { if (e.persisted) this.lead(); });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) {
        this.hiddenSince = performance.now();
        clearTimeout(this.hideTimer);
        const wait = this.config.seedHidden * 1000 + 100;
        if (wait < 2 ** 31) this.hideTimer = setTimeout(() => this.update(), wait); // else: no limit
      } else {
        this.lead();
        this.update();
      }
    });
    if (navigator.connection && navigator.connection.addEventListener) navigator.connection.addEventListener('change', () => this.update());
    this.cacheP.then((cache) => { if (cache) this.lead(); });
  }

  /** The policy the coordinator told, else the one last seen. */
  policy() {
    const l = this.client.link;
    return (l && l.policy) || consent.policy();
  }

  // link is the page's coordinator link, whose welcome (with the site's
  // policy) makes the seeder look again.
  link() {
    const l = this.client.ctx().link;
    if (!l.onWelcome) {
      this.welcome = new Promise((r) => { l.onWelcome = () => { r(); setTimeout(() => this.update()); }; });
    }
    return l;
  }

  // knownPolicy waits for the site's policy where this browser never saw
  // it (a first visit: nothing may be kept before it is known), at most
  // POLICY_WAIT; null if it did not come.
  async knownPolicy() {
    const l = this.link();
    if (!l.policy && !consent.rememberedPolicy()) await Promise.race([this.welcome, new Promise((r) => setTimeout(r, POLICY_WAIT))]);
    return l.policy || consent.rememberedPolicy();
  }

  /** Why this browser must not seed now ('' when it may). */
  blocked() {
    const c = this.config;
    if (!c.seed || !c.upload || !c.p2p || c.group === 'http') return 'off';
    if (!consent.uploadAllowed(this.policy())) return 'policy';
    const nc = navigator.connection;
    if (nc && (nc.saveData || nc.type === 'cellular') && !c.seedCellular) return 'metered';
    if (document.hidden && performance.now() - this.hiddenSince >= c.seedHidden * 1000) return 'hidden';
    const r = this.spent();
    if (r.visit + this.pending >= c.seedPerVisit || r.day + this.pending >= c.seedPerDay) return 'budget';
    return '';
  }

  // lead asks for leadership; the lock is held until abdicate().
  lead() {
    if (this.leading || this.asking || !navigator.locks || this.blocked() === 'hidden') return;
    const ask = (this.asking = new AbortController());
    navigator.locks.request(LOCK + this.config.prefix, { signal: ask.signal }, () => new Promise((release) => {
      this.asking = null;
      this.leading = true;
      this.release = release;
      this.timer = setInterval(() => this.tick(), TICK);
      this.rescanTimer = setInterval(() => this.update(), RESCAN);
      this.update();
    })).catch(() => { if (this.asking === ask) this.asking = null; });
  }

  /** Stops seeding and hands leadership to another tab of the site. */
  abdicate() {
    if (this.asking) this.asking.abort();
    this.asking = null;
    if (!this.leading) return;
    this.stop();
    this.leading = false;
    clearInterval(this.timer);
    clearInterval(this.rescanTimer);
    this.release();
  }

  /** Re-evaluates what to seed: the leader seeds the cache unless blocked. */
  update() {
    if (!this.leading) return;
    this.why = this.blocked();
    if (this.why === 'hidden') return this.abdicate();
    if (this.why) return this.stop();
    this.scanning = this.scanning.then(() => this.rescan()).catch(() => {});
  }

  // rescan joins the swarms of the most recently used cached files, as many
  // as the coordinator allows beside the page's own downloads.
  async rescan() {
    const cache = await this.cacheP;
    if (!cache || !this.leading || this.blocked()) return;
    const entries = await cache.entries();
    this.cachedBytes = entries.reduce((n, e) => n + e.bytes, 0);
    const page = this.client.swarms;
    const link = this.link();
    const room = Math.max(0, (link.maxSwarms || 8) - page.size - 1);
    const want = entries.filter((e) => e.bytes > 0 && !page.has(e.id) && !this.failed.has(e.id)).slice(0, room);
    for (const id of [...this.swarms.keys()]) {
      const e = want.find((x) => x.id === id);
      // Gone from the cache, or holding more than when joined: join again.
      if (!e || e.names.size - 2 > this.swarms.get(id).store.count) this.quit(id);
    }
    for (const e of want) {
      if (this.swarms.has(e.id)) continue;
      const m = await cache.manifest(e.id);
      if (!m || !this.leading || this.blocked() || page.has(e.id) || this.swarms.has(e.id)) continue;
      this.swarms.set(e.id, new this.SeedSwarm(m, e.url, this.client.ctx(), new CachedStore(cache, m, e.names), this));
    }
  }

  /** Leaves seeding swarm id (the page downloads it itself, or it is gone). */
  quit(id) {
    const s = this.swarms.get(id);
    if (!s) return;
    this.swarms.delete(id);
    s.leave();
  }

  stop() {
    for (const id of [...this.swarms.keys()]) this.quit(id);
    this.admitted.clear();
    this.flush();
  }

  // admit gives neighbour c a place among seedPeers while it lacks
  // something this browser holds, and closes it otherwise.
  admit(c) {
    if (!(c.lack > 0) || (!this.admitted.has(c) && this.admitted.size >= this.config.seedPeers)) {
      this.admitted.delete(c);
      return c.close();
    }
    if (!this.admitted.has(c)) {
      this.admitted.add(c);
      c.busyAt = performance.now();
    }
  }

  // tick lets go of neighbours that asked for nothing for IDLE, so their
  // places serve others, and keeps the visit record current.
  tick() {
    const t = performance.now();
    for (const c of [...this.admitted]) {
      if (c.closed) this.admitted.delete(c);
      else if (c.serving || c.queue.length) c.busyAt = t;
      else if (t - c.busyAt > IDLE) c.close();
    }
    this.flush();
  }

  spend(n) {
    this.uploaded += n;
    this.pending += n;
    const c = this.config;
    const r = this.spent();
    if (r.visit + this.pending >= c.seedPerVisit || r.day + this.pending >= c.seedPerDay) this.update();
  }

  // spent is this browser's uploads from the cache in the current visit
  // (a visit ends after VISIT_GAP away from the site) and today.
  spent() {
    let r = null;
    try { r = JSON.parse(localStorage.getItem(SPENT)); } catch { /* none */ }
    r = r || {};
    const day = new Date().toDateString();
    return { day: r.date === day ? r.day || 0 : 0, visit: now() - r.last < VISIT_GAP ? r.visit || 0 : 0, date: day };
  }

  flush() {
    const r = this.spent();
    try {
      localStorage.setItem(SPENT, JSON.stringify({ date: r.date, day: r.day + this.pending, visit: r.visit + this.pending, last: now() }));
      this.pending = 0;
    } catch { /* kept in pending */ }
  }

  // unknown handles a swarm the coordinator does not know (the server
  // restarted or forgot the manifest): asking for the manifest again makes
  // it known; another id means the file changed, and the entry goes.
  async unknown(s) {
    this.quit(s.id);
    if (this.rechecked.has(s.id)) return this.failed.add(s.id);
    this.rechecked.add(s.id);
    try {
      const m = await fetchManifest(this.config.prefix, new URL(s.url, location.href));
      if (!m || m.id !== s.id) (await this.cacheP).drop(s.id);
    } catch {
      this.failed.add(s.id);
    }
    this.update();
  }

  // The page's side: a download's swarm reads what the cache holds first
  // and writes every block it verifies.

  /** Fills swarm's store from the cache and records its new blocks; once per swarm. */
  attach(swarm, u) {
    if (!swarm.persist) swarm.persist = this.fill(swarm, u.pathname + u.search);
    return swarm.persist;
  }

  async fill(swarm, url) {
    const cache = await this.cacheP;
    if (!cache) return;
    const known = this.link().policy || consent.rememberedPolicy();
    const cached = new Set();
    if (known && consent.keepAllowed(known)) {
      for (const [i, b] of await cache.load(swarm.manifest, url)) {
        cached.add(i);
        if (swarm.store.put(i, b)) swarm.announce(i);
      }
    }
    this.track(swarm, url, cache, cached);
  }

  /**
   * Records swarm's blocks without reading the cache into it: service
   * worker mode's bridge (sw/bridge.js), whose worker reads the cache itself.
   */
  keep(swarm, u) {
    if (!swarm.persist) swarm.persist = this.cacheP.then((cache) => cache && this.track(swarm, u.pathname + u.search, cache, new Set()));
    return swarm.persist;
  }

  // track records swarm's blocks (but the cached ones); swarm.stored(),
  // called when its store is complete, counts them once written.
  track(swarm, url, cache, cached) {
    // Recording waits for the policy where it was never seen; the
    // download does not.
    const rec = this.record(swarm, url, cache, cached);
    swarm.stored = () => rec.then((w) => w && w.done()).then((ok) => {
      if (!ok) return;
      if (this.ch) this.ch.postMessage({ type: 'cached' });
      this.update();
    });
    // Loaded after the download ended (persist.js loads this chunk in
    // the background): record it now.
    rec.then(() => { if (swarm.store.complete && !swarm.download) swarm.stored(); });
  }

  // record writes swarm's verified blocks to the cache, those held already
  // (but the cached ones) and every later one; null when they may not be kept.
  async record(swarm, url, cache, cached) {
    const policy = await this.knownPolicy();
    if (!policy || !consent.keepAllowed(policy)) return null;
    const st = swarm.store, w = cache.writer(swarm.manifest, url);
    consent.markCached(true); // the next page loads the seeder at once
    st.onPut = (i, b) => w.put(i, b);
    for (let i = 0; i < st.blocks.length; i++) {
      const b = st.has(i) && !cached.has(i) && (await st.read(i));
      if (b) w.put(i, b);
    }
    return w;
  }

  /** The visitor withdrew consent: seed nothing more and delete the cache. */
  async forget() {
    this.stop();
    const cache = await this.cacheP;
    if (cache) await cache.wipe();
    consent.markCached(false);
  }

  /** What peer5.stats().seeding shows. */
  stats() {
    let peers = 0;
    for (const s of this.swarms.values()) peers += s.openConns().length;
    return { leader: this.leading, swarms: this.swarms.size, peers, bytesUploaded: this.uploaded,
      cachedBytes: this.cachedBytes, blocked: this.leading ? this.why : 'not leader', policy: this.policy(), consent: consent.consentGiven() };
  }
}
