// CoordinatorLink is the page's one WebSocket to the coordinator at
// {prefix}ws. It joins the swarms registered with it (again after every
// reconnect, with their current bitfields, since a new connection starts
// empty), routes server messages to them by swarm id, and paces what it
// sends under the limits the server announced in welcome, because the
// server closes a connection that exceeds them. Losing the coordinator costs
// only new introductions: open DataChannels and HTTP carry on. The welcome
// also names the ICE servers (the site's own STUN server, TURN with fresh
// credentials), so a page gets them however it loaded the client.
import * as msg from './coordmsg.js';
import { rememberPolicy } from './consent.js';

const MIN_BACKOFF = 1000, MAX_BACKOFF = 30000;

export class CoordinatorLink {
  constructor(url, group) {
    this.url = url;
    this.group = group;
    this.swarms = new Map(); // swarm id → Swarm
    this.loaded = false;
    this.peer = '';
    this.welcomeIce = null; // the welcome's ICE servers; null from a server that predates them
    this.assigns = false; // the server hands out blocks to fetch from the origin
    this.ws = null;
    this.ready = false;
    this.backoff = MIN_BACKOFF;
    this.queue = [];
    this.tokens = 20;
    this.rate = 50;
    this.burst = 20;
    this.last = 0;
    this.timer = 0; // pending flush
    this.retry = 0; // pending reconnect
    this.suspended = false; // the page is hidden (pagehide) until pageshow
  }

  /** Registers a swarm and joins it now or on the next welcome. */
  join(swarm) {
    this.swarms.set(swarm.id, swarm);
    if (this.ready) this.send(msg.join(swarm.id, swarm.url, swarm.announced(), swarm.seed));
    else this.connect();
  }

  leave(id) {
    if (this.swarms.delete(id)) this.send(msg.leave(id));
  }

  /** Queues a message; dropped while disconnected (joins are replayed). */
  send(m) {
    if (!this.ready) return;
    this.queue.push(JSON.stringify(m));
    this.flush();
  }

  // flush sends what the token bucket allows now and schedules the rest.
  flush() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    while (this.queue.length && this.tokens >= 1 && this.ready) {
      this.tokens--;
      this.ws.send(this.queue.shift());
    }
    if (this.queue.length && this.ready && !this.timer) {
      this.timer = setTimeout(() => { this.timer = 0; this.flush(); }, Math.ceil(1000 / this.rate));
    }
  }

  /** Closes the connection (the coordinator drops this page from every swarm) until resume. */
  suspend() {
    this.suspended = true;
    clearTimeout(this.retry);
    this.retry = 0;
    const ws = this.ws;
    this.ws = null; // its close event no longer reconnects
    this.ready = false;
    this.queue = [];
    if (ws) {
      ws.close(1000);
      for (const s of this.swarms.values()) s.linkLost();
    }
  }

  /** Connects again and rejoins every registered swarm with its blocks. */
  resume() {
    this.suspended = false;
    this.backoff = MIN_BACKOFF;
    if (this.swarms.size) this.connect();
  }

  connect() {
    if (this.ws || this.retry || this.suspended) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      return this.reconnect();
    }
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify(msg.hello(this.group)));
    ws.onmessage = (e) => this.receive(msg.parse(e.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      this.queue = [];
      for (const s of this.swarms.values()) s.linkLost();
      this.reconnect();
    };
  }

  // reconnect waits with exponential back-off and jitter, so a restarted
  // server is not hit by every page at once.
  reconnect() {
    if (!this.swarms.size || this.retry || this.suspended) return;
    const delay = this.backoff * (0.5 + Math.random());
    this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
    this.retry = setTimeout(() => { this.retry = 0; this.connect(); }, delay);
  }

  receive(m) {
    if (!m) return;
    if (m.type === 'welcome') {
      // The site's upload policy first: what a swarm announces depends on it.
      rememberPolicy((this.policy = m.upload || 'always'));
      this.maxSwarms = (m.limits || {}).maxSwarms;
      if (this.onWelcome) this.onWelcome();
      this.ready = true;
      this.peer = m.peer;
      this.welcomeIce = Array.isArray(m.iceServers) ? m.iceServers : null;
      this.assigns = !!m.assigns;
      this.backoff = MIN_BACKOFF;
      const l = m.limits || {};
      this.rate = l.messagesPerSecond > 0 ? l.messagesPerSecond : this.rate;
      this.burst = this.tokens = l.messageBurst > 0 ? l.messageBurst : this.burst;
      this.last = performance.now();
      this.setLoaded(!!m.loaded);
      for (const s of this.swarms.values()) this.send(msg.join(s.id, s.url, s.announced(), s.seed));
    } else if (m.type === 'load') {
      this.setLoaded(!!m.loaded);
    } else {
      const s = this.swarms.get(m.swarm);
      if (s) s.coordinatorMessage(m);
    }
  }

  /** ICE servers for a new RTCPeerConnection: the welcome's, then the page's own (data-ice-servers, peer5.config.iceServers). */
  iceServers(own) {
    const seen = new Set();
    return [...(this.welcomeIce || []), ...(Array.isArray(own) ? own : [])].filter((s) => {
      const k = JSON.stringify(s);
      return !seen.has(k) && seen.add(k);
    });
  }

  /** Reports how a connection attempt ended, to a server that takes such reports. */
  connection(swarm, peer, result, path) {
    if (this.welcomeIce) this.send(msg.connection(swarm, peer, result, path));
  }

  /** Whether the server assigns blocks to fetch from the origin now (connected, and its welcome said so). */
  assigning() { return this.ready && this.assigns; }

  setLoaded(v) {
    this.loaded = v;
    for (const s of this.swarms.values()) s.setLoaded(v);
  }
}
