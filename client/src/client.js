// Client is the page's P2P side: one coordinator link, the swarms the
// page has joined (kept after a download so it seeds while open), and
// transfer(), which brings a shareable resource into a verified Blob from
// HTTP and neighbours, restarting on a new manifest if the origin changes,
// and reports each shared download once when it ends.
//
// In the A/B "http" group the very same path runs with no coordinator: no
// neighbours, no seeding, HTTP range requests only, measured and reported
// alike, so the two groups differ in P2P alone.
import { CoordinatorLink } from './coordinator.js';
import { sendReport } from './report.js';
import { Swarm } from './swarm.js';
import { Download } from './download.js';
import { fetchManifest } from './manifest.js';
import { OriginChanged } from './httpblock.js';
import { PERSONAL } from './personal.js';

const MAX_RESTARTS = 3, MAX_RECENT = 64;
// The link of the "http" group: joins nothing, sends nothing, so no
// neighbour is ever introduced and nobody learns that this page has blocks.
const NO_LINK = { ready: false, loaded: false, peer: '', join() {}, leave() {}, send() {}, iceServers: () => [], connection() {} };
const timedOut = (r) => r === 'timeout' || (r && r.name === 'TimeoutError');

export class Client {
  constructor(config) {
    this.config = config;
    this.swarms = new Map();
    this.totals = { fromHttp: 0, fromPeers: 0, uploaded: 0 };
    this.connections = { connected: {}, failed: 0 }; // attempts this page offered, by outcome
    this.link = null;
    this.active = new Set(); // transfers running now, reported as aborted if the page goes
    this.recent = new Map(); // absolute URL → its latest transfer, for peer5.stats(url)
    addEventListener('pagehide', () => {
      for (const j of [...this.active]) this.end(j, 'abort');
      this.suspend();
    });
    addEventListener('pageshow', (e) => { if (e.persisted) this.resume(); });
  }

  // suspend takes the page out of every swarm when it is hidden for good
  // or frozen in the back/forward cache: such a page serves nobody, so it
  // must be neither counted nor suggested. Its blocks stay; resume (on a
  // pageshow from that cache) rejoins with them.
  suspend() {
    for (const s of this.swarms.values()) s.disconnect();
    if (this.link) this.link.suspend();
  }

  resume() {
    if (this.link) this.link.resume();
  }

  /** Whether this page is in the A/B group that downloads over HTTP only. */
  httpOnly() { return this.config.group === 'http'; }

  /**
   * The absolute URL, without fragment, if a request may be shared: P2P
   * on, WebRTC present, a GET to this origin without credentials or a
   * header that makes it personal. A relative url resolves against the
   * document's base URL, as XHR and fetch resolve it.
   * @returns {URL|null}
   */
  shareable(method, url, withCredentials, headerNames) {
    if (!this.config.p2p || typeof RTCPeerConnection !== 'function' || !crypto.subtle) return null;
    if (String(method).toUpperCase() !== 'GET' || withCredentials) return null;
    if (headerNames.some((h) => PERSONAL.test(h))) return null;
    // A page in another encoding encodes a query's non-ASCII characters in it.
    if (document.characterSet !== 'UTF-8' && /[^\x00-\x7f]/.test(String(url))) return null;
    let u;
    try { u = new URL(url, document.baseURI); } catch { return null; }
    if (u.username || u.password) return null;
    u.hash = '';
    return u.origin === location.origin && !u.pathname.startsWith(this.config.prefix) ? u : null;
  }

  ctx() {
    if (this.httpOnly()) return { config: this.config, link: NO_LINK, totals: this.totals, connections: this.connections, httpOnly: true };
    if (!this.link) {
      const ws = new URL(this.config.prefix + 'ws', location.href);
      ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
      this.link = new CoordinatorLink(ws.href, this.config.group);
    }
    return { config: this.config, link: this.link, totals: this.totals, connections: this.connections };
  }

  /**
   * Fetches u into a verified Blob. Resolves {blob, read, manifest, stats},
   * read(i, signal) giving block i's bytes for a body read afterwards (see
   * BlockStore.readBack); null when the module says the
   * resource is not shareable (nothing started yet: the caller delegates).
   * hooks.onManifest(m) fires once the first manifest is known; when the
   * resource changes at the origin meanwhile, the transfer starts again on
   * the new one if hooks.restartable, else fails with OriginChanged;
   * hooks.onProgress(stats, store) after every verified block, store
   * holding the blocks verified so far. A download that got
   * as far as a manifest is reported once: ok, error or abort (an abort
   * for a timeout, XHR's or AbortSignal.timeout()'s, counts as an error).
   */
  async transfer(u, hooks, signal) {
    const job = { url: u.href, swarm: null, start: performance.now(), state: 'loading', durationMs: 0,
      stats: { bytesFromHttp: 0, bytesFromPeers: 0, peers: 0, loaded: 0, total: 0 } };
    this.recent.delete(job.url);
    this.recent.set(job.url, job);
    if (this.recent.size > MAX_RECENT) this.recent.delete(this.recent.keys().next().value);
    this.active.add(job);
    try {
      const r = await this.run(u, hooks, signal, job);
      this.end(job, r ? 'ok' : '');
      return r;
    } catch (err) {
      this.end(job, signal && signal.aborted && !timedOut(signal.reason) ? 'abort' : 'error');
      throw err;
    }
  }

  async run(u, hooks, signal, job) {
    const stats = job.stats;
    for (let attempt = 0; ; attempt++) {
      const m = await fetchManifest(this.config.prefix, u, signal);
      // Aborted while the manifest was read is not "not shareable".
      if (signal && signal.aborted) throw signal.reason;
      if (!m) {
        if (attempt === 0) return null;
        throw new Error('p2pxhr: the resource is no longer shareable');
      }
      // The caller showed the first manifest's headers and, maybe, bytes:
      // a fetch or XHR body must not go on with another version's.
      if (attempt > 0 && m.id !== job.first && !hooks.restartable) throw new OriginChanged('the resource changed at the origin during the transfer');
      job.first = job.first || m.id;
      const swarm = (job.swarm = this.swarmFor(m, u));
      if (this.persist && !swarm.ctx.httpOnly) await this.persist.attach(swarm, u); // cached blocks need no HTTP, no peers
      if (attempt === 0) hooks.onManifest(m);
      stats.total = m.size;
      try {
        for (let lost = swarm.store.lost; !swarm.store.complete;) {
          // Blocks the browser could not read back are fetched again, but
          // not for ever: a browser that loses every block fails the transfer.
          if (swarm.store.lost - lost > swarm.store.blocks.length) throw new Error('p2pxhr: the browser cannot read back the blocks it stored');
          if (swarm.download) {
            await swarm.download.promise.catch(() => {}); // another request of this page is on it
            continue;
          }
          // Each download adds to what the ones before brought.
          const base = { http: stats.bytesFromHttp, peers: stats.bytesFromPeers };
          const d = new Download(swarm, u.href, (d) => {
            stats.bytesFromHttp = base.http + d.fromHttp;
            stats.bytesFromPeers = base.peers + d.fromPeers;
            stats.peers = Math.max(stats.peers, d.peersUsed.size);
            stats.loaded = swarm.store.bytes;
            hooks.onProgress(stats, swarm.store);
          });
          await (d.promise = d.run(signal));
        }
      } catch (err) {
        if (!(err instanceof OriginChanged) || attempt >= MAX_RESTARTS) throw err;
        this.drop(swarm); // never mix two versions: restart from an empty store
        continue;
      }
      stats.loaded = m.size;
      swarm.sendStats(); // the coordinator's live counters (the dashboard's charts) need not wait for the timer
      if (swarm.stored) swarm.stored();
      const blob = swarm.store.toBlob(m.contentType), read = swarm.store.readBack(u.href);
      this.retire(swarm);
      return { blob, read, manifest: m, stats };
    }
  }

  // end closes a transfer once and reports it. Not reported: transfers the
  // module did not share (delegated, outcome ''), those that ended before a
  // manifest named their swarm, and repeats served from the page's own store
  // (no bytes moved: not a download, and it would skew the timings).
  end(job, outcome) {
    if (!this.active.delete(job)) return;
    job.state = outcome || 'delegated';
    job.durationMs = Math.round(performance.now() - job.start);
    const s = job.stats;
    if (!outcome || !job.swarm || (outcome === 'ok' && !(s.bytesFromHttp + s.bytesFromPeers))) return;
    sendReport(this.config.prefix, {
      swarm: job.swarm.id, group: job.swarm.ctx.httpOnly ? 'http' : 'p2p', // the module knows these two
      bytesFromHttp: s.bytesFromHttp, bytesFromPeers: s.bytesFromPeers,
      bytesUploaded: job.swarm.counters.uploaded, durationMs: job.durationMs, outcome,
    });
  }

  swarmFor(m, u) {
    let s = this.swarms.get(m.id);
    if (this.persist) this.persist.quit(m.id); // the page joins it itself, not as a seeder
    if (!s) this.swarms.set(m.id, (s = new Swarm(m, u.pathname + u.search, this.ctx())));
    return s;
  }

  drop(s) {
    if (this.swarms.get(s.id) === s) this.swarms.delete(s.id);
    s.leave();
  }

  // retire keeps complete swarms to seed, the newest first, within
  // maxSeedBytes; without upload, or in the "http" group, nothing is kept.
  retire(done) {
    const keep = done.serving();
    let budget = keep ? this.config.maxSeedBytes : 0;
    for (const s of [...this.swarms.values()].reverse()) {
      if (s.download || !s.store.complete) continue;
      if (s.store.bytes <= budget && (s !== done || keep)) budget -= s.store.bytes;
      else this.drop(s);
    }
    // Re-inserting marks `done` as the newest.
    if (this.swarms.delete(done.id)) this.swarms.set(done.id, done);
  }

  /**
   * Page-wide totals, the neighbours connected now and the outcomes of the
   * connection attempts this page offered ({connected: {path: n}, failed});
   * with a URL, that
   * URL's latest transfer: {state: loading|ok|error|abort|delegated,
   * bytesFromHttp, bytesFromPeers, peers, loaded, total, durationMs}, or null.
   */
  stats(url) {
    if (url !== undefined) {
      const u = new URL(url, document.baseURI);
      u.hash = '';
      const j = this.recent.get(u.href);
      return j ? { state: j.state, ...j.stats, durationMs: j.durationMs } : null;
    }
    let peers = 0;
    for (const s of this.swarms.values()) peers += s.openConns().length;
    const t = this.totals;
    const c = this.connections;
    return { peers, bytesFromHttp: t.fromHttp, bytesFromPeers: t.fromPeers, bytesUploaded: t.uploaded,
      connections: { connected: { ...c.connected }, failed: c.failed } };
  }
}
