// Swarm is this page's membership in one manifest's swarm: its verified
// blocks, its connections to neighbours the coordinator introduced, and
// what it tells the coordinator (have, stats, report). It outlives the
// download that filled it, so the page seeds the file while it stays open.
import { BlockStore } from './store.js';
import { PeerConn, CONNECT_TIMEOUT } from './peerconn.js';
import * as msg from './coordmsg.js';
import { fetchManifest } from './manifest.js';
import { uploadAllowed } from './consent.js';

const HAVE_FLUSH = 500, STATS_PERIOD = 5000, MAX_HAVE = 1024, MAX_REJOINS = 5;

export class Swarm {
  /** opts.store replaces the in-memory store; opts.seed joins as a seeder (seeder.js). */
  constructor(manifest, url, ctx, opts) {
    this.manifest = manifest;
    this.id = manifest.id;
    this.url = url;
    this.ctx = ctx; // { config, link, totals, connections, httpOnly }
    this.store = (opts && opts.store) || new BlockStore(manifest);
    this.seed = !!(opts && opts.seed);
    this.conns = new Map();
    this.banned = new Set();
    this.awaiting = new Map(); // neighbours we are to answer → timer until their offer
    this.vouched = new Set();
    this.download = null;
    this.pendingHave = [];
    this.counters = { fromHttp: 0, fromPeers: 0, uploaded: 0 };
    // The coordinator counts stats cumulative since the join: each new
    // connection is sent the counters less what earlier ones were told.
    this.told = { ...this.counters };
    this.base = this.told;
    this.sent = '';
    this.statsTimer = setInterval(() => this.sendStats(), STATS_PERIOD);
    ctx.link.join(this);
  }

  /** Whether this page offers its blocks to neighbours (data-upload, the site's policy and the visitor's consent; never in the "http" group). */
  serving() { return this.ctx.config.upload && !this.ctx.httpOnly && uploadAllowed(this.ctx.link.policy); }

  /** The blocks to tell the coordinator of: none while not serving. */
  announced() {
    const h = this.store.have();
    return this.serving() ? h : h.fill(false);
  }

  openConns() { return [...this.conns.values()].filter((c) => c.open); }

  coordinatorMessage(m) {
    switch (m.type) {
      case 'neighbours':
        if (this.download) this.download.introduced((m.peers || []).length);
        for (const p of m.peers || []) {
          if (p.offer) this.connect(p.id, true);
          else this.await(p.id);
        }
        break;
      case 'signal': {
        let c = this.conns.get(m.from);
        if (m.kind === 'offer') this.stopAwaiting(m.from);
        if (!c && m.kind === 'offer') c = this.connect(m.from, false);
        if (c) c.signal(m.kind, m.data, m.mid).catch(() => c.close());
        break;
      }
      case 'assign':
        // Blocks to fetch from the origin; given back when nothing here downloads.
        if (!this.download || !this.download.assigned(m.blocks || [])) this.ctx.link.send(msg.release(this.id, m.blocks || []));
        break;
      case 'peer-left': {
        this.stopAwaiting(m.peer);
        const c = this.conns.get(m.peer);
        if (c && !c.open) { // an open channel may outlive the peer's coordinator link
          c.report('failed'); // an attempt we offered, ended: it failed
          c.close();
        }
        break;
      }
      case 'error':
        if (m.code === 'unknown-swarm') this.rejoinLater();
        break;
    }
  }

  /**
   * The coordinator does not know this swarm: its server restarted and has
   * not built the manifest again (it opens swarms only for manifests it
   * built). Fetching the manifest builds it; if it still names this swarm,
   * join again, backing off, a few times at most per connection. Another id
   * means the file changed: nothing to rejoin.
   */
  rejoinLater() {
    const link = this.ctx.link;
    if (this.rejoining) return;
    if (this.rejoinPeer !== link.peer) { this.rejoinPeer = link.peer; this.rejoins = 0; }
    if (this.rejoins >= MAX_REJOINS) return;
    this.rejoining = true;
    const wait = 1000 * 2 ** this.rejoins++ * (0.5 + Math.random());
    setTimeout(async () => {
      try {
        const m = await fetchManifest(this.ctx.config.prefix, new URL(this.url, location.href));
        if (m && m.id === this.id && link.swarms.get(this.id) === this && link.peer === this.rejoinPeer) link.join(this);
      } catch { /* offline: the next reconnect joins again */ }
      this.rejoining = false;
    }, wait);
  }

  // await expects an offer from a neighbour we were told to answer; one that
  // sends none in a third of the connect timeout holds the link for nothing
  // (an idle joiner) and is reported unreachable.
  await(id) {
    if (this.awaiting.has(id) || this.conns.has(id) || this.banned.has(id)) return;
    this.awaiting.set(id, setTimeout(() => {
      this.awaiting.delete(id);
      if (!this.conns.has(id)) this.report(id, 'unreachable');
    }, CONNECT_TIMEOUT / 3));
  }

  stopAwaiting(id) {
    clearTimeout(this.awaiting.get(id));
    this.awaiting.delete(id);
  }

  // evict drops the oldest connection that never heard from its neighbour
  // in a fifth of the connect timeout, reporting it: an idle peer must not
  // keep a real one out.
  evict() {
    let old = null;
    for (const c of this.conns.values()) {
      if (!c.open && !c.heard && performance.now() - c.born >= CONNECT_TIMEOUT / 5 && (!old || c.born < old.born)) old = c;
    }
    if (old) this.ban(old, 'unreachable');
    return !!old;
  }

  connect(id, offer) {
    const cfg = this.ctx.config;
    if (!id || id === this.ctx.link.peer || this.conns.has(id) || this.banned.has(id)) return null;
    // At the cap the link is declined, so the coordinator frees it on both sides.
    if (this.conns.size >= cfg.maxPeers && !this.evict()) return this.report(id, 'full'), null;
    let c;
    try {
      c = new PeerConn(this, id, { iceServers: this.ctx.link.iceServers(cfg.iceServers) }, offer);
    } catch {
      return null; // WebRTC refused (policy, extension): HTTP carries on
    }
    this.conns.set(id, c);
    if (offer) c.offer().catch(() => c.close());
    return c;
  }

  /** Counts and reports how an attempt this page offered ended. */
  connectionOutcome(c, result, path) {
    const n = this.ctx.connections;
    if (result === 'connected') n.connected[path] = (n.connected[path] || 0) + 1;
    else n.failed++;
    this.ctx.link.connection(this.id, c.remote, result, path);
  }

  sendSignal(to, kind, data, mid) {
    this.ctx.link.send(msg.signal(this.id, to, kind, data, mid));
  }

  peerMessage(c, m) {
    if (this.download) this.download.peerMessage(c, m);
  }

  connClosed(c) {
    if (this.conns.get(c.remote) === c) this.conns.delete(c.remote);
    if (this.download) this.download.peerGone(c);
  }

  /** Drops a neighbour for good in this swarm and reports it (bad-block, protocol, unresponsive, unreachable). */
  ban(c, reason) {
    this.report(c.remote, reason);
    c.close();
  }

  // report tells the coordinator once about a neighbour, which is then
  // never connected to again in this swarm.
  report(id, reason) {
    this.stopAwaiting(id);
    if (this.banned.has(id)) return;
    this.banned.add(id);
    this.ctx.link.send(msg.report(this.id, id, reason));
  }

  /** Tells the coordinator that a neighbour delivered a verified block (once per neighbour). */
  vouch(id) {
    if (this.vouched.has(id)) return;
    this.vouched.add(id);
    this.ctx.link.send(msg.received(this.id, id));
  }

  violation(c) { this.ban(c, 'protocol'); }

  setLoaded(v) {
    if (this.download) this.download.setLoaded(v);
  }

  /** Announces a newly verified block to neighbours and (batched) to the coordinator. */
  announce(i) {
    if (!this.serving()) return;
    for (const c of this.conns.values()) c.send({ type: 'have', block: i });
    this.pendingHave.push(i);
    if (this.pendingHave.length >= MAX_HAVE) this.flushHave();
    else if (!this.haveTimer) this.haveTimer = setTimeout(() => this.flushHave(), HAVE_FLUSH);
  }

  flushHave() {
    clearTimeout(this.haveTimer);
    this.haveTimer = 0;
    if (this.pendingHave.length) this.ctx.link.send(msg.have(this.id, this.pendingHave.splice(0)));
  }

  count(kind, n) {
    this.counters[kind] += n;
    this.ctx.totals[kind] += n;
  }

  uploaded(n) { this.count('uploaded', n); }

  /** Sends the counters since this connection's join when they changed. */
  sendStats() {
    const c = this.counters, b = this.base;
    const key = JSON.stringify(c);
    if (key === this.sent || !this.ctx.link.ready) return;
    this.sent = key;
    this.told = { ...c };
    this.ctx.link.send(msg.stats(this.id, { fromHttp: c.fromHttp - b.fromHttp, fromPeers: c.fromPeers - b.fromPeers, uploaded: c.uploaded - b.uploaded }));
  }

  /** The coordinator connection ended: the next one joins this swarm afresh. */
  linkLost() {
    this.base = this.told;
    this.sent = '';
    if (this.download) this.download.sentWant = 0; // the next connection hears the want again
  }

  /** Closes every neighbour connection, after telling the coordinator the latest counts. */
  disconnect() {
    this.flushHave();
    this.sendStats();
    for (const c of [...this.conns.values()]) c.close();
  }

  /** Leaves the swarm for good: closes connections, stops reporting. */
  leave() {
    this.flushHave();
    this.sendStats();
    clearInterval(this.statsTimer);
    for (const id of [...this.awaiting.keys()]) this.stopAwaiting(id);
    this.ctx.link.leave(this.id);
    for (const c of [...this.conns.values()]) c.close();
    this.store.clear();
  }
}
