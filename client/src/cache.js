// BlockCache is this browser's persistent store of verified blocks, one
// for the origin and shared by its tabs: in the Origin Private File System
// (a directory per swarm, a file per block), else in Cache Storage. It
// survives page loads, so a repeat download comes from it and the site's
// seeding tab serves from it (seeder.js). Every block is verified again
// against its manifest when read back; a bad one is deleted. Entries are
// whole files by swarm id, evicted least recently used to keep within a
// budget; an entry whose URL now has another manifest (the file changed at
// the origin) is dropped as soon as that manifest is seen.
import { verifyBlock } from './hash.js';

const DIR = 'p2pxhr', META = 'm', USED = 'u', ID = /^[0-9a-f]{64}$/;

const withLock = (fn) => (navigator.locks ? navigator.locks.request(DIR + '-cache', fn) : fn());
const json = (v) => new TextEncoder().encode(JSON.stringify(v));
const parse = (b) => { try { return b && JSON.parse(new TextDecoder().decode(b)); } catch { return null; } };

// Each backend keeps named byte strings in per-swarm groups.
async function opfs() {
  const top = await (await navigator.storage.getDirectory()).getDirectoryHandle(DIR, { create: true });
  const dir = (id, create) => top.getDirectoryHandle(id, { create });
  return {
    async list() {
      const out = new Map();
      for await (const [id, h] of top.entries()) {
        if (h.kind !== 'directory') continue;
        const names = new Set();
        for await (const n of h.keys()) names.add(n);
        out.set(id, names);
      }
      return out;
    },
    async get(id, n) {
      try { return new Uint8Array(await (await (await (await dir(id)).getFileHandle(n)).getFile()).arrayBuffer()); } catch { return null; }
    },
    async put(id, n, bytes) {
      // A writable commits on close: a block file is whole or absent.
      const w = await (await (await dir(id, true)).getFileHandle(n, { create: true })).createWritable();
      await w.write(bytes);
      await w.close();
    },
    del: async (id, n) => { try { await (await dir(id)).removeEntry(n); } catch { /* gone already */ } },
    remove: (id) => top.removeEntry(id, { recursive: true }).catch(() => {}),
  };
}

async function cacheStorage() {
  const c = await caches.open(DIR + '-blocks');
  const key = (id, n) => location.origin + '/' + DIR + '-cache/' + id + '/' + n;
  const parts = (r) => new URL(r.url).pathname.split('/').slice(2);
  return {
    async list() {
      const out = new Map();
      for (const r of await c.keys()) {
        const [id, n] = parts(r);
        if (!out.has(id)) out.set(id, new Set());
        out.get(id).add(n);
      }
      return out;
    },
    async get(id, n) {
      const r = await c.match(key(id, n));
      return r ? new Uint8Array(await r.arrayBuffer()) : null;
    },
    put: (id, n, bytes) => c.put(key(id, n), new Response(bytes)),
    del: (id, n) => c.delete(key(id, n)),
    async remove(id) {
      for (const r of await c.keys()) if (parts(r)[0] === id) await c.delete(r);
    },
  };
}

/** The bytes of an entry's blocks held, from their names and its sizes. */
function heldBytes(u, names) {
  let n = 0;
  for (const name of names) {
    const i = +name;
    if (name !== '' && Number.isInteger(i) && i >= 0 && i < u.blocks) n += Math.min(u.blockSize, u.size - i * u.blockSize);
  }
  return n;
}

export class BlockCache {
  /** @param backend one of the stores above; @param budget bytes the cache may hold */
  constructor(backend, budget) {
    this.be = backend;
    this.budget = budget;
  }

  /**
   * Opens the origin's cache within min(size, a quarter of the origin's
   * storage quota), on OPFS where files can be written, else Cache Storage;
   * null where neither exists or size is 0.
   */
  static async open(size, kind) {
    if (!(size > 0)) return null;
    let budget = size;
    try {
      const est = await navigator.storage.estimate();
      if (est.quota) budget = Math.min(size, Math.floor(est.quota / 4));
    } catch { /* no estimate: the configured size */ }
    try {
      const files = kind !== 'cache' && navigator.storage && navigator.storage.getDirectory && self.FileSystemFileHandle &&
        'createWritable' in FileSystemFileHandle.prototype;
      if (files) return new BlockCache(await opfs(), budget);
      if (self.caches) return new BlockCache(await cacheStorage(), budget);
    } catch { /* storage refused (private mode, policy) */ }
    return null;
  }

  /**
   * The entries held, most recently used first: {id, url, used, bytes,
   * names}. With clean (under the cache lock, where no entry is half
   * recorded), leftovers without their record are removed: blocks written
   * after another tab evicted their entry.
   */
  async entries(clean) {
    const out = [];
    for (const [id, names] of await this.be.list()) {
      const u = ID.test(id) && parse(await this.be.get(id, USED));
      if (!u || !names.has(META)) {
        if (clean) await this.be.remove(id);
        continue;
      }
      out.push({ id, url: u.url, used: u.used, bytes: heldBytes(u, names), names });
    }
    return out.sort((a, b) => b.used - a.used);
  }

  /** The total bytes held. */
  async bytes() {
    return (await this.entries()).reduce((n, e) => n + e.bytes, 0);
  }

  /** @returns {Promise<object|null>} the manifest an entry was stored for. */
  async manifest(id) {
    const m = parse(await this.be.get(id, META));
    return m && m.id === id ? m : null;
  }

  /**
   * The verified blocks of m held ([index, bytes] pairs), after dropping
   * every other version of url: the file changed at the origin.
   */
  async load(m, url) {
    let names = null;
    for (const e of await this.entries()) {
      if (e.id === m.id) names = e.names;
      else if (e.url === url) await this.drop(e.id);
    }
    const out = [];
    if (!names) return out;
    for (const n of names) {
      if (n === META || n === USED) continue;
      const b = await this.read(m, +n);
      if (b) out.push([+n, b]);
    }
    await this.touch(m, url);
    return out;
  }

  /** Block i of m, verified, or null (a bad block is deleted). */
  async read(m, i) {
    const b = await this.be.get(m.id, String(i));
    if (b && (await verifyBlock(m, i, b))) return b;
    if (b) await this.be.del(m.id, String(i));
    return null;
  }

  /** Marks m's entry as used now. */
  touch(m, url) {
    return this.be.put(m.id, USED, json({ url, used: Date.now(), size: m.size, blockSize: m.blockSize, blocks: m.blocks.length })).catch(() => {});
  }

  /**
   * Makes room for m (evicting the least recently used other entries) and
   * records it; false when it cannot fit the budget.
   */
  reserve(m, url) {
    if (m.size > this.budget) return Promise.resolve(false);
    return withLock(async () => {
      const all = await this.entries(true);
      let total = m.size;
      for (const e of all) if (e.id !== m.id) total += e.bytes;
      for (const e of all.reverse()) {
        if (total <= this.budget) break;
        if (e.id === m.id) continue;
        await this.drop(e.id);
        total -= e.bytes;
      }
      if (!all.some((e) => e.id === m.id)) await this.be.put(m.id, META, json(m));
      await this.touch(m, url);
      return true;
    }).catch(() => false);
  }

  /**
   * A writer for m's blocks: put(i, bytes) queues a verified block; done()
   * resolves true once every queued block is stored (false if it did not
   * fit or a write failed, e.g. over the quota: later ones are skipped).
   */
  writer(m, url) {
    let chain = this.reserve(m, url);
    return {
      put: (i, bytes) => {
        chain = chain.then((ok) => ok && this.be.put(m.id, String(i), bytes).then(() => true, () => false));
      },
      done: () => chain,
    };
  }

  drop(id) { return this.be.remove(id); }

  /** Removes every entry. */
  async wipe() {
    await withLock(async () => {
      for (const id of (await this.be.list()).keys()) await this.be.remove(id);
    }).catch(() => {});
  }
}
