// Bridge is a page's side of service worker mode, the chunk
// {prefix}bridge.js that a page loads to register the worker or when the
// worker asks (register.js).
// A service worker has no RTCPeerConnection, so the page carries the
// swarm for it: on the worker's "want" it joins the file's swarm like a
// download of its own and fetches the blocks wanted (the blocks streams
// wait for first: from a peer that has them, else from HTTP at once),
// posting each verified block back; the blocks the worker fetched itself
// come here to be seeded and kept in the persistent cache like any other.
// Download and BlockScheduler come from the page's client, so this chunk
// carries only what differs.
import { verifyBlock } from '../hash.js';
import { warn } from '../warn.js';

// An urgent block a peer was asked for goes to HTTP too after this long.
const URGENT_PEER_WAIT = 1000;
// How long a site's own worker may take to say it imported the module's.
const IMPORTED_WAIT = 1000;

export function makeBridge({ Download, BlockScheduler }) {
  // WantedBlocks schedules only the blocks the worker wants (the others
  // count as done), the urgent ones first: to a peer holding one, else to
  // HTTP at once, and to HTTP as well when its peer is slow.
  class WantedBlocks extends BlockScheduler {
    constructor(store, now) {
      super({}, store.have().map(() => true), now);
      this.store = store;
      this.urgent = [];
      this.since = new Map();
    }

    want(i) {
      if (i < 0 || i >= this.done.length || !this.done[i] || this.store.has(i)) return;
      this.done[i] = false;
      this.remaining++;
    }

    setUrgent(list, now) {
      this.urgent = list.filter((i) => !this.done[i]);
      for (const i of this.urgent) if (!this.since.has(i)) this.since.set(i, now);
    }

    nextForHTTP(now) {
      for (const i of this.urgent) {
        if (this.done[i] || this.http.has(i)) continue;
        if ((this.held(i) === 0 && this.availFor(i) === 0) || now - this.since.get(i) >= URGENT_PEER_WAIT) {
          this.http.add(i);
          return i;
        }
      }
      return super.nextForHTTP(now);
    }

    nextForPeer(id, now) {
      const p = this.peers.get(id);
      const out = [];
      for (const i of p ? this.urgent : []) {
        if (p.inflight.size >= p.window) break;
        if (this.done[i] || !p.has[i] || p.skip.has(i) || p.inflight.has(i) || this.held(i) > 0 || this.http.has(i)) continue;
        p.inflight.set(i, now + this.cfg.requestTimeout);
        this.holders.set(i, this.held(i) + 1);
        out.push(i);
      }
      return out.concat(super.nextForPeer(id, now));
    }
  }

  // StreamDownload is a Download of the wanted blocks only; it ends when
  // they are all here, and the next want starts another.
  class StreamDownload extends Download {
    constructor(swarm, url) {
      super(swarm, url, () => {});
      const s = (this.sched = new WantedBlocks(swarm.store, performance.now()));
      s.setLoaded(swarm.ctx.link.loaded);
      // The coordinator's answer to the join reached an earlier download.
      if (swarm.answered) s.introduced(swarm.introducedPeers || 0);
    }

    want(blocks, urgent) {
      for (const i of blocks) this.sched.want(i);
      if (urgent) this.sched.setUrgent(urgent, performance.now());
      this.pumpAll();
      this.wake();
    }

    introduced(n) {
      super.introduced(n);
      this.swarm.answered = true;
      this.swarm.introducedPeers = (this.swarm.introducedPeers || 0) + n;
    }
  }

  return class Bridge {
    /** @param url the worker's script URL ({prefix}sw.js, absolute) */
    constructor(client, url) {
      this.client = client;
      this.url = url;
      this.files = new Map(); // swarm id → {swarm, url, wanted: Set, urgent: []}
      this.worker = null;
      addEventListener('pagehide', () => this.post({ p2pxhr: 'bye' }));
      addEventListener('pageshow', (e) => { if (e.persisted && this.worker) this.hello(this.worker); });
    }

    /**
     * Registers the module's worker for scope, unless the site has a
     * worker of its own there: that one stays, and the console says how to
     * import the module's into it.
     */
    async register(scope) {
      const sw = navigator.serviceWorker;
      try {
        const r = await sw.getRegistration(scope);
        const w = r && (r.active || r.waiting || r.installing);
        if (w && w.scriptURL !== this.url) {
          if (await this.imported(w)) return;
          warn(`this site has its own service worker at ${r.scope}; P2PXHR's is not registered there. Add importScripts('${this.client.config.prefix}sw.js') at the top of that worker to share its files through the swarm`);
          return;
        }
        await sw.register(this.url, { scope });
      } catch { /* refused (policy, private mode): pages work as without it */ }
    }

    // imported asks the site's worker w whether it imported the module's
    // (importScripts): then nothing needs saying.
    imported(w) {
      return new Promise((resolve) => {
        this.ours = () => resolve(true);
        setTimeout(() => resolve(false), IMPORTED_WAIT);
        w.postMessage({ p2pxhr: 'who' });
      });
    }

    /** Tells the worker this page carries swarms for it. */
    hello(worker) {
      this.worker = worker;
      this.post({ p2pxhr: 'bridge' });
    }

    post(msg, transfer) {
      try { if (this.worker) this.worker.postMessage(msg, transfer || []); } catch { /* the worker is gone: it asks again */ }
    }

    /** A message of the worker's ({p2pxhr: type, ...}). */
    message(d, worker) {
      this.worker = worker || this.worker;
      if (d.p2pxhr === 'ping') return this.hello(this.worker);
      if (d.p2pxhr === 'ours') return this.ours && this.ours();
      const f = this.file(d);
      if (!f) return;
      if (d.p2pxhr === 'want') {
        for (const i of d.blocks || []) {
          if (f.swarm.store.has(i)) this.send(f, i, 'cache');
          else f.wanted.add(i);
        }
        this.run(f);
      } else if (d.p2pxhr === 'urgent') {
        f.urgent = d.blocks || [];
        this.run(f);
      } else if (d.p2pxhr === 'put' && d.bytes instanceof ArrayBuffer) {
        this.put(f, d.i, new Uint8Array(d.bytes));
      }
    }

    // file is the page's entry for the worker's file d.id, created on the
    // first message (which carries the manifest), and its swarm: the
    // page's own if it has one, joined again if the page let it go.
    file(d) {
      let f = this.files.get(d.id);
      if (!f) {
        if (!d.m || d.m.id !== d.id) return null;
        f = { m: d.m, url: new URL(d.url, location.href), swarm: null, wanted: new Set(), urgent: [] };
        this.files.set(d.id, f);
      }
      if (!f.swarm || this.client.swarms.get(d.id) !== f.swarm) {
        f.swarm = this.client.swarmFor(f.m, f.url);
        this.hook(f);
        this.keep(f.swarm, f.url);
      }
      return f;
    }

    // hook hears of every block the swarm gains, from this page's
    // downloads or any other: the ones the worker wants go to it.
    hook(f) {
      const s = f.swarm, count = s.count.bind(s), announce = s.announce.bind(s);
      s.count = function (kind, n) {
        if (kind !== 'uploaded') this.lastSource = kind === 'fromPeers' ? 'peers' : 'http';
        return count(kind, n);
      };
      s.announce = (i) => {
        announce(i);
        const from = s.lastSource || 'cache';
        s.lastSource = '';
        if (f.wanted.delete(i)) this.send(f, i, from);
      };
    }

    // keep records the swarm's blocks in the persistent cache, as a
    // download's are, without reading back what is there (the worker
    // reads the cache itself).
    async keep(swarm, u) {
      const seeder = this.client.persist && !swarm.ctx.httpOnly && (await this.client.persist.load());
      if (seeder) seeder.keep(swarm, u);
    }

    // stored counts the swarm's blocks as cached once its store is complete.
    stored(f) {
      if (f.swarm.store.complete && f.swarm.stored) f.swarm.stored();
    }

    async send(f, i, from) {
      const b = await f.swarm.store.read(i);
      if (b) this.post({ p2pxhr: 'block', id: f.swarm.id, i, bytes: b.buffer, from }, [b.buffer]);
    }

    // run fetches what the worker wants: with a download of its own, or,
    // while the page's own download of the file runs, through that one.
    run(f) {
      const d = f.swarm.download;
      if (d instanceof StreamDownload) return d.want([...f.wanted], f.urgent);
      if (d || !f.wanted.size) return;
      const sd = new StreamDownload(f.swarm, f.url.href);
      sd.want([...f.wanted], f.urgent);
      sd.promise = sd.run().then(() => { this.stored(f); this.run(f); }, () => {
        // The origin changed, or HTTP keeps failing: the worker takes over.
        const blocks = [...f.wanted];
        f.wanted.clear();
        this.post({ p2pxhr: 'fail', id: f.swarm.id, blocks });
      });
    }

    // put takes a block the worker fetched by HTTP: verified again, stored,
    // counted and announced as a download's own, so the page seeds it.
    async put(f, i, bytes) {
      if (f.swarm.store.has(i) || !(await verifyBlock(f.swarm.manifest, i, bytes))) return;
      f.wanted.delete(i);
      const d = f.swarm.download;
      if (d instanceof StreamDownload) return d.completed(i, '', bytes);
      if (f.swarm.store.put(i, bytes)) {
        f.swarm.count('fromHttp', bytes.length);
        f.swarm.announce(i);
        this.stored(f);
      }
    }
  };
}
