// PeerConn is one RTCPeerConnection to a neighbour with its one reliable,
// ordered DataChannel (label p2pxhr-v1). It does the signalling, checks the
// neighbour's hello, and serves the neighbour's requests itself from the
// swarm's verified blocks, re-verifying each block read back and sending
// it in pieces of at most 16 KiB paced by bufferedAmountLowThreshold so a
// slow receiver costs us at most HIGH_WATER bytes. Everything else it hands
// to its swarm. The side that offered reports how the attempt ended: the
// kind of path the selected candidate pair took (getStats()), or a failure.
import * as wire from './wire.js';
import { verifyBlock, blockRange } from './hash.js';

const HIGH_WATER = 1 << 20, LOW_WATER = 256 << 10;
const MAX_UPLOAD_QUEUE = 64, MAX_PENDING_CANDIDATES = 64;
// A link whose channel has not opened after CONNECT_TIMEOUT is reported
// unreachable, so the coordinator frees it on both sides.
export const CONNECT_TIMEOUT = 15000;
// Candidate types from the least to the most direct: a pair's path is the
// less direct of its two candidates.
const PATHS = ['relay', 'srflx', 'prflx', 'host'];

/** The path of pc's selected candidate pair ('' when not known yet). */
export async function selectedPath(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId) || pair;
  });
  // Firefox has no transport stats; it marks the pair itself.
  if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.selected) pair = s; });
  if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return '';
  const types = [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)].map((c) => c && c.candidateType);
  return PATHS.find((t) => types.includes(t)) || '';
}

export class PeerConn {
  /** @param swarm the owning Swarm; @param remote the neighbour's peer id; @param offerer whether we offer (and report) */
  constructor(swarm, remote, rtcConfig, offerer) {
    this.swarm = swarm;
    this.remote = remote;
    this.offerer = !!offerer;
    this.reported = false;
    this.has = null; // the neighbour's blocks, from its hello
    this.open = false;
    this.closed = false;
    this.queue = [];
    this.current = null;
    this.serving = false;
    this.pending = [];
    this.remoteSet = false;
    this.heard = false; // the neighbour has sent us a signal
    this.born = performance.now();
    this.pc = new RTCPeerConnection(rtcConfig);
    // Candidates wait until our offer or answer has gone: the other side
    // makes its connection on the offer and drops candidates before it.
    this.localSent = false;
    this.early = [];
    this.pc.onicecandidate = (e) => {
      const c = e.candidate;
      const cand = [c ? c.candidate : '', c && c.candidate ? c.sdpMid : ''];
      if (this.localSent) swarm.sendSignal(remote, 'candidate', ...cand);
      else this.early.push(cand);
    };
    this.pc.onconnectionstatechange = () => {
      const st = this.pc.connectionState;
      if (st === 'failed' && !this.open) this.report('failed');
      if (st === 'failed' || st === 'closed') this.close();
    };
    this.pc.ondatachannel = (e) => (e.channel.label === wire.LABEL ? this.attach(e.channel) : e.channel.close());
    // A connection that never opens must not hold a peer slot forever.
    this.timer = setTimeout(() => {
      if (this.open) return;
      this.report('failed');
      swarm.ban(this, 'unreachable');
    }, CONNECT_TIMEOUT);
  }

  /** Reports the attempt's outcome once, if we offered. */
  async report(result) {
    if (!this.offerer || this.reported) return;
    this.reported = true;
    let path = '';
    if (result === 'connected') {
      // The pair is selected by the time the channel opens, but its stats
      // may lag a moment behind.
      for (let i = 0; i < 5 && !path; i++) {
        if (i) await new Promise((r) => setTimeout(r, 200));
        try { path = await selectedPath(this.pc); } catch { return; }
      }
      if (!path) return; // not knowing the path, claim nothing
    }
    this.swarm.connectionOutcome(this, result, path);
  }

  /** The offering side creates the channel and sends the offer. */
  async offer() {
    this.attach(this.pc.createDataChannel(wire.LABEL));
    await this.pc.setLocalDescription(await this.pc.createOffer());
    this.sendDescription('offer');
  }

  sendDescription(kind) {
    this.swarm.sendSignal(this.remote, kind, this.pc.localDescription.sdp);
    this.localSent = true;
    for (const c of this.early.splice(0)) this.swarm.sendSignal(this.remote, 'candidate', ...c);
  }

  /** Applies an offer, answer or candidate relayed by the coordinator. */
  async signal(kind, data, mid) {
    this.heard = true;
    if (kind === 'candidate') {
      if (!data) return;
      // The coordinator protocol carries the candidate line and its mid; a
      // Go peer may send the JSON of an RTCIceCandidateInit instead.
      const init = data[0] === '{' ? JSON.parse(data) : { candidate: data, sdpMid: mid || '0' };
      if (!this.remoteSet) {
        if (this.pending.length < MAX_PENDING_CANDIDATES) this.pending.push(init);
        return;
      }
      return this.pc.addIceCandidate(init);
    }
    await this.pc.setRemoteDescription({ type: kind, sdp: data });
    this.remoteSet = true;
    for (const c of this.pending.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
    if (kind === 'offer') {
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      this.sendDescription('answer');
    }
  }

  attach(dc) {
    this.dc = dc;
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onopen = () => {
      this.open = true;
      clearTimeout(this.timer);
      this.report('connected');
      const s = this.swarm;
      this.send({ type: 'hello', swarmId: s.id, blockCount: s.manifest.blocks.length, have: s.serving() ? s.store.have() : [] });
    };
    dc.onclose = () => this.close();
    dc.onmessage = (e) => {
      if (typeof e.data === 'string') return this.swarm.violation(this); // the protocol is binary only
      let m;
      try {
        m = wire.decode(e.data);
      } catch {
        return this.swarm.violation(this);
      }
      this.message(m);
    };
  }

  message(m) {
    const n = this.swarm.manifest.blocks.length;
    switch (m.type) {
      case 'hello':
        if (m.swarmId !== this.swarm.id || m.blockCount !== n) return this.swarm.violation(this);
        this.has = m.have;
        break;
      case 'have':
        if (m.block >= n) return this.swarm.violation(this);
        if (this.has) this.has[m.block] = true;
        break;
      case 'request':
        return this.enqueue(m);
      case 'cancel':
        return this.cancelUpload(m);
    }
    this.swarm.peerMessage(this, m);
  }

  /** Sends one message; a closing channel drops it (onclose reports). */
  send(m) {
    if (this.dc && this.dc.readyState === 'open') {
      try { this.dc.send(wire.encode(m)); } catch { this.close(); }
    }
  }

  reject(r, reason) {
    this.send({ type: 'reject', block: r.block, offset: r.offset, length: r.length, reason });
  }

  enqueue(r) {
    const s = this.swarm;
    if (r.block >= s.manifest.blocks.length || r.offset + r.length > blockRange(s.manifest, r.block)[1]) return this.reject(r, wire.REJECT_INVALID);
    if (!s.serving() || !s.store.has(r.block)) return this.reject(r, wire.REJECT_NOT_HAVE);
    if (this.queue.length >= MAX_UPLOAD_QUEUE) return this.reject(r, wire.REJECT_BUSY);
    this.queue.push(r);
    if (!this.serving) this.serveLoop();
  }

  cancelUpload(x) {
    const same = (r) => r && r.block === x.block && r.offset === x.offset && r.length === x.length;
    if (same(this.current)) this.current = null;
    const i = this.queue.findIndex(same);
    if (i >= 0) this.queue.splice(i, 1);
  }

  // serveLoop answers queued requests one at a time.
  async serveLoop() {
    this.serving = true;
    const s = this.swarm;
    while (this.queue.length && !this.closed) {
      const r = (this.current = this.queue.shift());
      const block = await s.store.read(r.block);
      if (!block || !(await verifyBlock(s.manifest, r.block, block))) {
        this.reject(r, wire.REJECT_NOT_HAVE);
        continue;
      }
      const data = block.subarray(r.offset, r.offset + r.length);
      for (let off = 0; off < data.length; off += wire.MAX_PIECE) {
        if (!(await this.drained()) || this.current !== r) break;
        const piece = data.subarray(off, off + wire.MAX_PIECE);
        this.send({ type: 'piece', block: r.block, offset: r.offset + off, data: piece });
        s.uploaded(piece.length);
      }
    }
    this.current = null;
    this.serving = false;
  }

  // drained resolves once the channel holds at most HIGH_WATER bytes.
  drained() {
    const dc = this.dc;
    if (this.closed) return Promise.resolve(false);
    if (dc.bufferedAmount <= HIGH_WATER) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => { dc.removeEventListener('bufferedamountlow', done); this.onGone = null; resolve(!this.closed); };
      dc.addEventListener('bufferedamountlow', done);
      this.onGone = done;
    });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    if (this.onGone) this.onGone();
    try { this.pc.close(); } catch { /* already closed */ }
    this.swarm.connClosed(this);
  }
}
