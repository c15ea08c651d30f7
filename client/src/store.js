// BlockStore keeps the verified blocks of one manifest as Blobs, one per
// block: the browser may page Blobs out of the JS heap, and the result is a
// Blob of the parts, never one giant ArrayBuffer copy. It stores only what
// the caller verified; serving re-verifies what it reads back.
//
// A Blob can fail to be read back: Chromium rejects with NotReadableError
// when its blob storage lost the bytes (seen in a 1 GiB download, from the
// first block on). A block read back that way is forgotten — not served,
// fetched again by a download still running — and a body reading a finished
// transfer (readBack) gets it from the origin again, verified.
import { fetchVerifiedBlock } from './httpblock.js';

const bytesOf = async (blob) => new Uint8Array(await blob.arrayBuffer());

export class BlockStore {
  constructor(manifest) {
    this.manifest = manifest;
    this.blocks = new Array(manifest.blocks.length).fill(null);
    this.count = 0;
    this.bytes = 0;
    this.lost = 0; // blocks forgotten because they could not be read back
  }

  get complete() { return this.count === this.blocks.length; }

  has(i) { return !!this.blocks[i]; }

  /** @returns {boolean[]} which blocks are held. */
  have() { return this.blocks.map(Boolean); }

  /** Stores verified block i; returns false if it was already held. */
  put(i, bytes) {
    if (this.blocks[i]) return false;
    this.blocks[i] = new Blob([bytes]);
    this.count++;
    this.bytes += bytes.length;
    if (this.onPut) this.onPut(i, bytes); // the persistent cache (seeder.js)
    return true;
  }

  /** @returns {Promise<Uint8Array|null>} block i's bytes, null if not held (or no longer readable). */
  async read(i) {
    const b = this.blocks[i];
    if (!b) return null;
    try {
      return await bytesOf(b);
    } catch {
      if (this.blocks[i] === b) {
        this.blocks[i] = null;
        this.count--;
        this.bytes -= b.size;
        this.lost++;
      }
      return null;
    }
  }

  /** Forgets every block (a failed re-verification or an eviction); a readBack taken before keeps its own. */
  clear() {
    this.blocks = new Array(this.blocks.length).fill(null);
    this.count = this.bytes = 0;
  }

  /** @returns {Blob} the whole resource; the store must be complete. */
  toBlob(type) {
    return new Blob(this.blocks, { type: type || '' });
  }

  /**
   * @returns {(i: number, signal?: AbortSignal) => Promise<{bytes: Uint8Array, fromHttp: boolean}>}
   * a reader of the blocks of this complete store, for a body read after the
   * transfer: it keeps them when the store is cleared, and fetches from url
   * again, verified, a block the browser can no longer give back.
   */
  readBack(url) {
    const parts = this.blocks.slice(), m = this.manifest;
    return async (i, signal) => {
      try {
        return { bytes: await bytesOf(parts[i]), fromHttp: false };
      } catch { /* fetched again below */ }
      return { bytes: await fetchVerifiedBlock(url, m, i, signal), fromHttp: true };
    };
  }
}

/** @returns {Promise<{bytes: Uint8Array, fromHttp: number}>} a finished transfer's bytes in one buffer, read block by block (see readBack). */
export async function readAll(r, signal) {
  const m = r.manifest, bytes = new Uint8Array(m.size);
  let fromHttp = 0;
  for (let i = 0; i < m.blocks.length; i++) {
    const b = await r.read(i, signal);
    bytes.set(b.bytes, i * m.blockSize);
    if (b.fromHttp) fromHttp += b.bytes.length;
  }
  return { bytes, fromHttp };
}
