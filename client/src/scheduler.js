// BlockScheduler decides which block goes where: HTTP or which peer. It is
// a line-by-line port of peer/scheduler.go (the Go peer) so browsers and Go
// peers behave alike in one swarm; docs/PROTOCOL.md ("Scheduler")
// states the policy. Pure bookkeeping: no I/O, times passed in as ms.

const DEFAULTS = { firstBlocks: 1, initialWindow: 4, maxWindow: 32, requestTimeout: 8000, endgameBlocks: 8, loadedGrace: 3000, lonelyGrace: 500, peerGrace: 1000, maxRejects: 16, coordinationGrace: 500, starveGrace: 2000 };
// Coordinated HTTP (docs/PROTOCOL.md 3.9): off (local rules), expected (the
// coordinator's assignments are on their way), on.
const COORD_OFF = 0, COORD_EXPECTED = 1, COORD_ON = 2;
const NOT_HAVE = 2; // wire.REJECT_NOT_HAVE

// A moving average that takes a slowdown at once and a speedup gradually: a
// queue sized on a pace the link no longer keeps misses its deadlines.
const follow = (avg, took) => (avg <= 0 || took > avg ? took : (3 * avg + took) / 4);

export class BlockScheduler {
  /** @param {boolean[]} done blocks already held */
  constructor(cfg, done, now) {
    const c = { ...DEFAULTS };
    // Zero or absent keys take the defaults, as in Go (shared vectors rely on it).
    for (const [k, v] of Object.entries(cfg || {})) if (v) c[k] = v;
    if (c.maxWindow < c.initialWindow) c.maxWindow = Math.max(32, c.initialWindow);
    this.cfg = c;
    this.done = done.slice();
    this.remaining = done.filter((d) => !d).length;
    this.avail = new Array(done.length).fill(0);
    // Holders that are not weak: a peer whose window shrank below the
    // initial one does not keep HTTP from a block, so a peer trickling just
    // under the deadline cannot set the pace of the whole download.
    this.sure = new Array(done.length).fill(0);
    this.late = new Array(done.length).fill(false);
    this.lateAt = new Array(done.length).fill(-Infinity); // when each block last turned late
    this.http = new Set();
    this.holders = new Map(); // peer requests in flight per block
    this.peers = new Map();
    this.loaded = false;
    this.start = now;
    this.pace = 0; // how long a block from any peer has taken lately (follow)
    // Set once the coordinator names any neighbour: peers are on their way,
    // so a loaded server's grace is worth waiting.
    this.wasIntroduced = false;
    // Set once the coordinator answered the join, naming neighbours or none.
    this.answered = false;
    // Coordinated HTTP: blocks leased to us (not held yet), those HTTP has
    // not taken yet in order, blocks taken on our own not yet told, and when
    // some peer last had a request of ours in flight or a block was leased to us.
    this.coord = { mode: COORD_OFF, queue: [], leased: new Set(), claims: [], claimed: new Set(), busyAt: null };
  }

  /** HTTP waits up to coordinationGrace from the start for the coordinator's assignments. */
  expectCoordination() { if (this.coord.mode === COORD_OFF) this.coord.mode = COORD_EXPECTED; }

  /** HTTP follows the coordinator's assignments (on), or the local rules again (off). */
  coordinate(on) {
    const was = this.coord.mode === COORD_ON;
    if (on) this.coord.mode = COORD_ON;
    else if (was) this.coord.mode = COORD_OFF;
    if (on !== was) this.recountSure(); // weak depends on it
  }

  isCoordinated() { return this.coord.mode === COORD_ON; }

  /** Records blocks the coordinator leased to this download. */
  assigned(blocks) {
    for (const i of blocks) {
      if (i >= 0 && i < this.done.length && !this.done[i] && !this.coord.leased.has(i)) {
        this.coord.leased.add(i);
        this.coord.queue.push(i);
      }
    }
  }

  /** [assigned blocks not held yet, those HTTP has not started]. */
  leased() {
    return [this.coord.leased.size, this.coord.queue.filter((i) => !this.done[i] && !this.http.has(i) && !this.held(i)).length];
  }

  /** Blocks HTTP took on its own since the last call. */
  takeClaims() { return this.coord.claims.splice(0); }

  /** The coordinator answered the join (or topped it up) naming n neighbours (default 1). */
  introduced(n = 1) {
    this.answered = true;
    if (n > 0) this.wasIntroduced = true;
  }

  isDone() { return this.remaining === 0; }

  setLoaded(v) { this.loaded = v; }

  held(i) { return this.holders.get(i) || 0; }

  /** Records a peer's bitfield from its hello. */
  addPeer(id, has) {
    this.removePeer(id);
    // owing: when it was asked for a block and delivered none since (null:
    // owes nothing); rejects: requests declined since its last block;
    // proven: it has delivered a block in this download; lastAt, perBlock:
    // when it last delivered a block we asked for, and how long one takes
    // it (moving average, 0 until measured).
    const p = { has: new Array(this.done.length).fill(false), window: this.cfg.initialWindow, inflight: new Map(), skip: new Set(), owing: null, rejects: 0, proven: false, lastAt: null, perBlock: 0 };
    this.peers.set(id, p);
    has.forEach((h, i) => { if (h && i < p.has.length) this.claim(p, i, true); });
  }

  /** Forgets a peer and its claims; its requests in flight become free again. */
  removePeer(id) {
    const p = this.peers.get(id);
    if (!p) return;
    for (const i of p.inflight.keys()) this.holders.set(i, this.held(i) - 1);
    p.has.forEach((h, i) => { if (h) this.claim(p, i, false); });
    this.peers.delete(id);
  }

  peerHas(id, i) {
    const p = this.peers.get(id);
    if (p && i >= 0 && i < p.has.length && !p.has[i]) this.claim(p, i, true);
  }

  claim(p, i, has) {
    const d = has ? 1 : -1;
    p.has[i] = has;
    this.avail[i] += d;
    if (!this.weak(p)) this.sure[i] += d;
  }

  // Weak: its window shrank below the initial one, or, while HTTP follows its
  // own rules (not the coordinator's, which send each block once), its pace
  // keeps fewer than that in flight.
  weak(p) {
    return p.window < this.cfg.initialWindow ||
      (this.coord.mode !== COORD_ON && p.perBlock > 0 && this.fits(p.perBlock) < this.cfg.initialWindow);
  }

  recountSure() {
    this.sure.fill(0);
    for (const p of this.peers.values()) if (!this.weak(p)) p.has.forEach((h, i) => { if (h) this.sure[i]++; });
  }

  setWindow(p, w) { this.reweigh(p, () => { p.window = w; }); }

  // reweigh applies change to p, moving its claims in or out of `sure` when it turns weak or strong.
  reweigh(p, change) {
    const was = this.weak(p);
    change();
    if (this.weak(p) !== was) {
      const d = was ? 1 : -1;
      p.has.forEach((h, i) => { if (h) this.sure[i] += d; });
    }
  }

  /**
   * Frees a declined request. not-have forgets the claim; any other reason
   * counts as a missed deadline (not asked again for it, HTTP or others may
   * take it, window halves). True when the peer has declined maxRejects
   * requests since its last block: drop it.
   */
  rejected(id, i, reason) {
    const p = this.peers.get(id);
    if (!p || !p.inflight.has(i)) return false; // withdrawn meanwhile, or never asked
    this.release(p, i);
    p.rejects++;
    if (reason === NOT_HAVE) {
      if (p.has[i]) this.claim(p, i, false);
    } else {
      p.skip.add(i);
      this.late[i] = true;
      this.lateAt[i] = -Infinity; // declined: no point waiting
      this.setWindow(p, Math.max(1, p.window >> 1));
    }
    return p.rejects >= this.cfg.maxRejects;
  }

  /**
   * Peers that serve nothing useful, sorted: asked two request deadlines ago
   * or more with no block since (four for a peer that delivered before), or
   * maxRejects declined since their last block. The caller drops them, so
   * their blocks go to HTTP or other peers. Progress does not wait that
   * long: at the first missed deadline the peer turns weak and HTTP takes
   * its blocks.
   */
  stalled(now) {
    const out = [];
    for (const [id, p] of this.peers) {
      const wait = (p.proven ? 4 : 2) * this.cfg.requestTimeout;
      if (p.rejects >= this.cfg.maxRejects || (p.owing !== null && now - p.owing >= wait)) out.push(id);
    }
    return out.sort();
  }

  release(p, i) {
    if (p.inflight.delete(i)) this.holders.set(i, this.held(i) - 1);
  }

  // Requests p may have in flight: its window, but no more than it delivers
  // in half a deadline at its measured pace. A peer serves our requests one
  // after another, so a deep queue on a slow link would miss deadlines and
  // send blocks the swarm has back to the origin.
  paced(p) {
    const per = p.perBlock > 0 ? p.perBlock : this.pace; // a new peer: the pace of those before it
    if (per <= 0) return p.window;
    return Math.min(p.window, Math.max(1, this.fits(per)));
  }

  // How many blocks a peer delivers in half a request deadline when one takes per.
  fits(per) { return Math.floor(this.cfg.requestTimeout / 2 / per); }

  // Learns p's pace from a block asked for at sent and delivered at now: it
  // began on it when we asked or when it sent the previous one.
  timeBlock(p, sent, now) {
    const took = now - (p.lastAt !== null && p.lastAt > sent ? p.lastAt : sent);
    p.lastAt = now;
    this.reweigh(p, () => { p.perBlock = follow(p.perBlock, took); });
    this.pace = follow(this.pace, took);
  }

  // Endgame: every missing block is requested somewhere, so idle sources
  // may duplicate requests and one slow peer cannot hold up the end.
  endgame() {
    if (this.remaining > this.cfg.endgameBlocks) return false;
    return this.done.every((d, i) => d || this.held(i) > 0 || this.http.has(i));
  }

  /** Blocks to request from peer id now, rarest first, filling its window. */
  nextForPeer(id, now) {
    const p = this.peers.get(id);
    const out = [];
    if (!p) return out;
    while (p.inflight.size < this.paced(p)) {
      const end = this.endgame();
      let best = -1, bestAvail = 0, ties = 0;
      for (let i = 0; i < this.done.length; i++) {
        if (this.done[i] || !p.has[i] || p.skip.has(i) || p.inflight.has(i)) continue;
        const busy = this.held(i) > 0 || this.http.has(i);
        if (busy && (!end || this.held(i) >= 2)) continue;
        if (best < 0 || this.avail[i] < bestAvail) { best = i; bestAvail = this.avail[i]; ties = 1; }
        else if (this.avail[i] === bestAvail && Math.random() * ++ties < 1) best = i; // random among the rarest
      }
      if (best < 0) break;
      if (p.owing === null) p.owing = now;
      p.inflight.set(best, now + this.cfg.requestTimeout);
      this.holders.set(best, this.held(best) + 1);
      out.push(best);
    }
    return out;
  }

  /** A block for an HTTP range request, or -1 if HTTP should idle (weak peers' claims do not count). */
  nextForHTTP(now) {
    const c = this.nextCoordinated(now);
    if (c !== null) return c;
    const n = this.done.length;
    const free = (i) => !this.done[i] && !this.http.has(i) && this.held(i) === 0;
    const take = (i) => { this.http.add(i); return i; };
    if (!this.loaded) for (let i = 0; i < Math.min(this.cfg.firstBlocks, n); i++) if (free(i)) return take(i);
    for (let i = 0; i < n; i++) if (free(i) && this.late[i] && (!this.loaded || this.availFor(i) === 0)) return take(i);
    const waited = now - this.start;
    const lonely = !this.wasIntroduced && this.peers.size === 0 && waited >= this.cfg.lonelyGrace;
    // Not loaded, HTTP still waits out the start-up race: at first every
    // block is an orphan only because no neighbour has said hello yet, so
    // the HTTP worker not busy with the first block took one at once (the
    // image demo's second window got 2-3 of its 6 blocks by HTTP while the
    // first window held them all). Orphans wait for the first hello, an
    // answer naming nobody, or peerGrace; the first blocks still go at once.
    const started = this.peers.size > 0 || (this.answered && !this.wasIntroduced) || waited >= this.cfg.peerGrace;
    if (this.loaded ? waited >= this.cfg.loadedGrace || lonely : started || lonely) {
      // A random orphan, not the next one: peers cannot see each other's HTTP
      // requests in flight, and walking the file in order makes them
      // converge on the same few blocks once orphans grow sparse.
      let pick = -1, seen = 0;
      for (let i = 0; i < n; i++) if (free(i) && this.sure[i] === 0 && Math.random() * ++seen < 1) pick = i;
      if (pick >= 0) return take(pick);
    }
    if (!this.loaded && this.endgame()) for (let i = 0; i < n; i++) if (!this.done[i] && !this.http.has(i)) return take(i);
    return -1;
  }

  availFor(i) {
    let n = 0;
    for (const p of this.peers.values()) if (p.has[i] && !p.skip.has(i) && !this.weak(p)) n++;
    return n;
  }

  httpFailed(i) {
    this.http.delete(i);
    if (this.coord.leased.has(i)) this.coord.queue.unshift(i); // still ours to fetch
  }

  // nextCoordinated is nextForHTTP while the coordinator assigns (or is
  // expected to); null when the local rules decide. Assigned blocks first;
  // on our own (claimed), a late block no other connected peer has (not
  // while loaded), and blocks no connected peer has once peers have had no
  // request of ours for starveGrace (loadedGrace while loaded).
  nextCoordinated(now) {
    const c = this.coord, n = this.done.length;
    if (c.mode === COORD_OFF) return null;
    if (c.mode === COORD_EXPECTED) {
      if (now - this.start < this.cfg.coordinationGrace) return -1;
      c.mode = COORD_OFF;
      return null;
    }
    // Busy: a peer has a request of ours, or the coordinator a block leased to
    // us (a block taken on our own meanwhile would most often be leased to
    // someone else: a second copy from the origin).
    if (c.busyAt === null || c.leased.size) c.busyAt = now;
    for (const p of this.peers.values()) if (p.inflight.size) { c.busyAt = now; break; }
    const free = (i) => !this.done[i] && !this.http.has(i) && this.held(i) === 0;
    const take = (i, own) => {
      this.http.add(i);
      if (own && !c.leased.has(i) && !c.claimed.has(i)) { c.claimed.add(i); c.claims.push(i); }
      return i;
    };
    for (let k = 0; k < c.queue.length;) {
      const i = c.queue[k];
      if (this.done[i] || !c.leased.has(i)) c.queue.splice(k, 1);
      else if (free(i)) { c.queue.splice(k, 1); return take(i, false); }
      else k++; // a peer request has it now; ours again if that fails
    }
    // A late block another copy of which the origin would send while it is
    // loaded waits for a peer that has it (or for peers to fall idle).
    // Not loaded, one whose request missed its deadline still waits a quarter
    // deadline: the block was rare, and others than its one holder have it soon.
    for (let i = 0; i < n; i++) if (free(i) && this.late[i] && !this.loaded && this.availFor(i) === 0 && now - this.lateAt[i] >= this.cfg.requestTimeout / 4) return take(i, true);
    const grace = this.loaded ? Math.max(this.cfg.starveGrace, this.cfg.loadedGrace) : this.cfg.starveGrace;
    if (now - c.busyAt >= grace) {
      let pick = -1, seen = 0;
      for (let i = 0; i < n; i++) if (free(i) && this.sure[i] === 0 && Math.random() * ++seen < 1) pick = i;
      if (pick >= 0) return take(pick, true);
    }
    // Endgame, not loaded: a duplicate of a peer request that has been out
    // for half its deadline (behind its peer's pace), not of every last block.
    if (!this.loaded && this.endgame()) {
      for (let i = 0; i < n; i++) if (!this.done[i] && !this.http.has(i) && this.requestedFor(i, now) >= this.cfg.requestTimeout / 2) return take(i, false);
    }
    return -1;
  }

  // requestedFor: how long the oldest peer request for block i has been out (0: none).
  requestedFor(i, now) {
    let d = 0;
    for (const p of this.peers.values()) if (p.inflight.has(i)) d = Math.max(d, now - (p.inflight.get(i) - this.cfg.requestTimeout));
    return d;
  }

  /**
   * Marks block i held at `now`, delivered by peer `from` ('' for HTTP).
   * Returns the peers whose duplicate requests lost (sorted) and whether an
   * HTTP fetch lost.
   */
  completed(i, from, now) {
    const w = this.peers.get(from);
    if (w) {
      if (w.inflight.has(i)) {
        this.setWindow(w, Math.min(this.cfg.maxWindow, w.window + 1));
        this.timeBlock(w, w.inflight.get(i) - this.cfg.requestTimeout, now);
      }
      this.release(w, i);
      // Useful: the clock restarts for what it still owes.
      w.proven = true;
      w.rejects = 0;
      w.owing = w.inflight.size ? now : null;
    }
    const httpLost = from !== '' && this.http.has(i);
    this.http.delete(i);
    const losers = [];
    for (const [id, p] of this.peers) {
      if (!p.inflight.has(i)) continue;
      this.release(p, i);
      losers.push(id);
      if (!p.inflight.size) p.owing = null; // we withdrew what it owed
    }
    losers.sort();
    if (!this.done[i]) { this.done[i] = true; this.remaining--; this.coord.leased.delete(i); }
    return { losers, httpLost };
  }

  /** Requests past their deadline (sorted by peer, block), freed, their blocks marked late. */
  expire(now) {
    const out = [];
    for (const [id, p] of this.peers) {
      let shrunk = false;
      for (const [i, dl] of p.inflight) {
        if (now < dl) continue;
        this.release(p, i);
        p.skip.add(i);
        this.late[i] = true;
        this.lateAt[i] = now;
        if (!shrunk) { this.setWindow(p, Math.max(1, p.window >> 1)); shrunk = true; }
        out.push({ peer: id, block: i });
      }
    }
    return out.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : a.block - b.block));
  }
}
