// Persistence is the page's handle on the persistent cache and seeding
// (seeder.js, cache.js), which load on demand as a chunk of their own,
// {prefix}seeder.js: a page whose visitor has nothing cached and downloads
// nothing never loads them. The chunk is a classic script carrying the
// client tag's nonce, so it runs under the same Content-Security-Policy.
import * as consent from './consent.js';
import { loadChunk } from './chunk.js';

// The chunk's version, defined when the client is bundled (clientjs.go).
/* global __P2PXHR_SEEDER__ */
const VERSION = typeof __P2PXHR_SEEDER__ === 'string' ? __P2PXHR_SEEDER__ : '';
const GLOBAL = '__p2pxhrSeeder';

export class Persistence {
  constructor(client, Swarm, script) {
    this.client = client;
    this.Swarm = Swarm;
    this.nonce = (script && script.nonce) || '';
    this.seeder = null;
    this.ch = consent.channel((m) => { if (m.type === 'consent') this.changed(); });
    // Something is cached: load now, so this page can seed it.
    if (consent.cached()) this.load();
  }

  load() {
    const c = this.client.config;
    if (!c.p2p || !(c.cacheSize > 0) || c.group === 'http') return Promise.resolve(null);
    return this.loading || (this.loading = loadChunk(c.prefix, 'seeder', VERSION, GLOBAL, this.nonce)
      .then((mod) => (this.seeder = new mod.Seeder(this.client, this.Swarm)))
      .catch(() => null)); // no chunk (blocked, offline): downloads go on without the cache
  }

  /** The page downloads swarm id itself: the seeder leaves it. */
  quit(id) {
    if (this.seeder) this.seeder.quit(id);
  }

  /**
   * Gives a download's swarm the cache: waits for its cached blocks where
   * something is cached, else records in the background.
   */
  attach(swarm, u) {
    const p = this.load().then((s) => s && s.attach(swarm, u));
    return consent.cached() ? p : undefined;
  }

  /**
   * peer5.consent(): the recorded choice; with v, a Promise of recording
   * it: false also deletes the cache and stops every upload, in every tab
   * of the site.
   */
  async consent(v) {
    if (v === undefined) return consent.consentGiven();
    consent.recordConsent(!!v);
    if (!v && (this.seeder || consent.cached())) {
      const s = await this.load();
      if (s) await s.forget();
    }
    this.changed();
    if (this.ch) this.ch.postMessage({ type: 'consent' });
    return !!v;
  }

  // changed applies a new consent: the page's swarms rejoin showing what
  // they may serve now (files kept only to serve are let go), and the
  // seeding tab starts or stops.
  changed() {
    const cl = this.client;
    for (const s of [...cl.swarms.values()]) {
      if (s.ctx.httpOnly) continue;
      if (!s.serving() && !s.download) {
        cl.drop(s);
        continue;
      }
      s.disconnect();
      s.ctx.link.leave(s.id);
      s.linkLost();
      s.ctx.link.join(s);
    }
    if (this.seeder) this.seeder.update();
  }

  /** peer5.stats().seeding. */
  stats() {
    if (this.seeder) return this.seeder.stats();
    return { leader: false, swarms: 0, peers: 0, bytesUploaded: 0, cachedBytes: 0, blocked: 'not loaded',
      policy: consent.policy(), consent: consent.consentGiven() };
  }
}
