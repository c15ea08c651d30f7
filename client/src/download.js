// Download drives one attempt at one manifest version: HTTP workers and
// neighbours feed the swarm's store under one BlockScheduler, as
// peer/download.go does for the Go peer. Every block is verified before it
// is stored, counted or announced; a block that fails from a peer bans the
// peer, one that fails from HTTP means the origin changed.
import { BlockScheduler } from './scheduler.js';
import { verifyBlock, blockRange } from './hash.js';
import { fetchVerifiedBlock, OriginChanged } from './httpblock.js';
import * as msg from './coordmsg.js';

const TICK = 50, HTTP_WORKERS = 2, MAX_HTTP_FAILURES = 5;
// Coordinated HTTP: each worker keeps a block in hand and the rest of the
// want covers ASSIGN_DELAY at the rate blocks come from the origin (as
// peer/assign.go's wantFor).
const ASSIGN_DELAY = 350, MAX_WANT = 16;

/** Leases to ask for with `workers` HTTP workers when one block takes perBlock ms (0: not measured). */
export function wantFor(workers, perBlock) {
  if (perBlock <= 0) return Math.min(MAX_WANT, 2 * workers);
  return Math.min(MAX_WANT, workers + Math.max(1, Math.ceil((workers * ASSIGN_DELAY) / perBlock)));
}

export class Download {
  constructor(swarm, url, onProgress, schedulerConfig) {
    this.swarm = swarm;
    this.url = url;
    this.onProgress = onProgress;
    this.sched = new BlockScheduler(schedulerConfig || {}, swarm.store.have(), performance.now());
    this.sched.setLoaded(swarm.ctx.link.loaded);
    // The "http" group's link never answers: nobody will be introduced.
    if (swarm.ctx.httpOnly) this.sched.introduced(0);
    this.asm = new Map(); // peer id → Map(block → {parts, got, size})
    this.httpStop = new Map(); // block → AbortController
    this.peersUsed = new Set();
    this.fromHttp = 0;
    this.fromPeers = 0;
    this.failures = 0;
    this.wakers = [];
    // Coordinated HTTP: the want last told (0: none since the link came up)
    // and the mean time one HTTP block takes.
    this.sentWant = 0;
    this.perBlock = 0;
    if (!swarm.ctx.httpOnly) this.sched.expectCoordination();
  }

  // coordinate follows the coordinator: HTTP takes its assignments while it
  // gives them, and it hears how many this download wants and what HTTP
  // took on its own.
  coordinate() {
    const link = this.swarm.ctx.link, on = !this.swarm.ctx.httpOnly && link.assigning();
    this.sched.coordinate(on);
    if (!on) { this.sentWant = 0; return; }
    const want = wantFor(HTTP_WORKERS, this.perBlock), claims = this.sched.takeClaims();
    if (want !== this.sentWant || claims.length) link.send(msg.fetch(this.swarm.id, want, claims));
    this.sentWant = want;
  }

  /** Queues blocks the coordinator leased to this download; false once it has ended. */
  assigned(blocks) {
    if (this.ended) return false;
    this.sched.assigned(blocks);
    this.wake();
    return true;
  }

  // httpDone learns how long an HTTP block takes, and hurries the haves
  // along when few assignments are left in hand (the next ones come only
  // once the coordinator hears of these).
  httpDone(ms) {
    this.perBlock = this.perBlock ? (3 * this.perBlock + ms) / 4 : ms;
    if (this.sched.isCoordinated() && this.sched.leased()[1] < HTTP_WORKERS) this.swarm.flushHave();
  }

  /** Resolves when the store is complete; rejects on abort, OriginChanged or lasting HTTP failure. */
  run(signal) {
    return new Promise((resolve, reject) => {
      this.finish = (err) => {
        if (this.ended) return;
        this.ended = true;
        clearInterval(this.timer);
        for (const ac of this.httpStop.values()) ac.abort();
        // The page stays in the swarm (it seeds): it wants no more blocks,
        // and gives back the ones it will not fetch now.
        if (this.sentWant) {
          const link = this.swarm.ctx.link, left = [...this.sched.coord.leased];
          link.send(msg.fetch(this.swarm.id, 0));
          if (left.length) link.send(msg.release(this.swarm.id, left.slice(0, 64)));
        }
        this.wake();
        if (this.swarm.download === this) this.swarm.download = null;
        signal && signal.removeEventListener('abort', onAbort);
        err ? reject(err) : resolve();
      };
      const onAbort = () => this.finish(new DOMException('aborted', 'AbortError'));
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort);
      }
      if (this.sched.isDone()) return this.finish();
      this.swarm.download = this;
      for (const c of this.swarm.openConns()) if (c.has) this.addPeer(c);
      this.coordinate();
      this.timer = setInterval(() => this.tick(), TICK);
      for (let w = 0; w < HTTP_WORKERS; w++) this.httpWorker();
    });
  }

  wake() {
    for (const w of this.wakers.splice(0)) w();
  }

  // idle waits for a wake or one tick, whichever comes first.
  idle() {
    return new Promise((r) => { this.wakers.push(r); setTimeout(r, TICK); });
  }

  async httpWorker() {
    const m = this.swarm.manifest;
    while (!this.ended) {
      const i = this.sched.nextForHTTP(performance.now());
      if (i < 0) { await this.idle(); continue; }
      const ac = new AbortController();
      this.httpStop.set(i, ac);
      const t0 = performance.now();
      try {
        const data = await fetchVerifiedBlock(this.url, m, i, ac.signal);
        if (this.ended) return;
        this.failures = 0;
        this.httpStop.delete(i);
        this.completed(i, '', data);
        this.httpDone(performance.now() - t0);
        continue;
      } catch (err) {
        if (this.ended) return;
        if (this.httpStop.get(i) === ac) this.httpStop.delete(i);
        this.sched.httpFailed(i);
        if (err instanceof OriginChanged) return this.finish(err);
        // A lost duplicate is aborted on purpose; anything else counts
        // toward giving up, so a dead origin fails the request in bounded time.
        if (!ac.signal.aborted && ++this.failures >= MAX_HTTP_FAILURES) return this.finish(err);
      }
      await this.idle();
    }
  }

  // tick cancels requests past their deadline and drops the peers that
  // serve nothing useful (closing reports them), so their blocks go to
  // HTTP or other peers.
  tick() {
    this.coordinate();
    const m = this.swarm.manifest, now = performance.now();
    const exp = this.sched.expire(now);
    for (const e of exp) {
      const a = this.asm.get(e.peer);
      if (a) a.delete(e.block);
      const c = this.swarm.conns.get(e.peer);
      if (c) c.send({ type: 'cancel', block: e.block, offset: 0, length: blockRange(m, e.block)[1] });
    }
    const stalled = this.sched.stalled(now);
    for (const id of stalled) {
      const c = this.swarm.conns.get(id);
      if (c) this.swarm.ban(c, 'unresponsive');
      else this.sched.removePeer(id);
    }
    if (exp.length || stalled.length) this.pumpAll();
    this.wake();
  }

  setLoaded(v) {
    this.sched.setLoaded(v);
    this.wake();
  }

  /** The coordinator answered naming n neighbours (n > 0: peers are on their way). */
  introduced(n) { this.sched.introduced(n); }

  addPeer(c) {
    this.sched.addPeer(c.remote, c.has);
    this.pump(c);
  }

  // completed books a verified block and cancels its duplicates.
  completed(i, from, data) {
    const s = this.swarm, m = s.manifest;
    const { losers, httpLost } = this.sched.completed(i, from, performance.now());
    if (httpLost) {
      const ac = this.httpStop.get(i);
      if (ac) ac.abort();
      this.httpStop.delete(i);
    }
    for (const l of losers) {
      const a = this.asm.get(l);
      if (a) a.delete(i);
      const c = s.conns.get(l);
      if (c) c.send({ type: 'cancel', block: i, offset: 0, length: blockRange(m, i)[1] });
    }
    if (from) s.vouch(from);
    if (s.store.put(i, data)) {
      if (from) {
        this.peersUsed.add(from);
        this.fromPeers += data.length;
        s.count('fromPeers', data.length);
      } else {
        this.fromHttp += data.length;
        s.count('fromHttp', data.length);
      }
      s.announce(i);
      this.onProgress(this);
    }
    if (this.sched.isDone()) return this.finish();
    this.pumpAll();
    this.wake();
  }

  // pump fills c's request window.
  pump(c) {
    if (this.ended || !c.open) return;
    const m = this.swarm.manifest;
    let a = this.asm.get(c.remote);
    if (!a) this.asm.set(c.remote, (a = new Map()));
    for (const i of this.sched.nextForPeer(c.remote, performance.now())) {
      const size = blockRange(m, i)[1];
      a.set(i, { parts: [], got: 0, size });
      c.send({ type: 'request', block: i, offset: 0, length: size });
    }
  }

  pumpAll() {
    for (const c of this.swarm.conns.values()) this.pump(c);
  }

  peerMessage(c, m) {
    if (this.ended) return;
    switch (m.type) {
      case 'hello': return this.addPeer(c);
      case 'have':
        this.sched.peerHas(c.remote, m.block);
        return this.pump(c);
      case 'reject': {
        const a = this.asm.get(c.remote);
        if (a) a.delete(m.block);
        // Declining everything is no help, only traffic: dropped and reported.
        if (this.sched.rejected(c.remote, m.block, m.reason)) return this.swarm.ban(c, 'unresponsive');
        return this.pump(c);
      }
      case 'piece': return this.piece(c, m);
    }
  }

  async piece(c, p) {
    const a = this.asm.get(c.remote);
    const b = a && a.get(p.block);
    if (!b) return; // cancelled or expired: a late piece, harmless
    if (p.offset !== b.got || b.got + p.data.length > b.size) return this.swarm.violation(c);
    b.parts.push(p.data.slice());
    b.got += p.data.length;
    if (b.got < b.size) return;
    a.delete(p.block);
    const data = new Uint8Array(b.size);
    let off = 0;
    for (const part of b.parts) { data.set(part, off); off += part.length; }
    const ok = await verifyBlock(this.swarm.manifest, p.block, data);
    if (this.ended) return;
    // A bad block: nothing is stored; the peer is dropped and reported, and
    // its requests go back to the scheduler when the connection closes.
    if (!ok) return this.swarm.ban(c, 'bad-block');
    this.completed(p.block, c.remote, data);
  }

  peerGone(c) {
    this.sched.removePeer(c.remote);
    this.asm.delete(c.remote);
    this.pumpAll();
    this.wake();
  }
}
