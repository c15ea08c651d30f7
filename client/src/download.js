// Download drives one attempt at one manifest version: HTTP workers and
// neighbours feed the swarm's store under one BlockScheduler, as
// peer/download.go does for the Go peer. Every block is verified before it
// is stored, counted or announced; a block that fails from a peer bans the
// peer, one that fails from HTTP means the origin changed.
import { BlockScheduler } from './scheduler.js';
import { verifyBlock, blockRange } from './hash.js';
import { fetchBlock, OriginChanged } from './httpblock.js';

const TICK = 50, HTTP_WORKERS = 2, MAX_HTTP_FAILURES = 5;

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
  }

  /** Resolves when the store is complete; rejects on abort, OriginChanged or lasting HTTP failure. */
  run(signal) {
    return new Promise((resolve, reject) => {
      this.finish = (err) => {
        if (this.ended) return;
        this.ended = true;
        clearInterval(this.timer);
        for (const ac of this.httpStop.values()) ac.abort();
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
      try {
        const data = await fetchBlock(this.url, m, i, ac.signal);
        if (this.ended) return;
        if (!(await verifyBlock(m, i, data))) throw new OriginChanged(`block ${i} from HTTP fails its hash`);
        if (this.ended) return;
        this.failures = 0;
        this.httpStop.delete(i);
        this.completed(i, '', data);
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
