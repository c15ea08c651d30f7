// BlockStore keeps the verified blocks of one manifest as Blobs, one per
// block: the browser may page Blobs out of the JS heap, and the result is a
// Blob of the parts, never one giant ArrayBuffer copy. It stores only what
// the caller verified; serving re-verifies what it reads back.

export class BlockStore {
  constructor(manifest) {
    this.manifest = manifest;
    this.blocks = new Array(manifest.blocks.length).fill(null);
    this.count = 0;
    this.bytes = 0;
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

  /** @returns {Promise<Uint8Array|null>} block i's bytes, null if not held. */
  async read(i) {
    const b = this.blocks[i];
    return b ? new Uint8Array(await b.arrayBuffer()) : null;
  }

  /** Forgets every block (a failed re-verification or an eviction). */
  clear() {
    this.blocks.fill(null);
    this.count = this.bytes = 0;
  }

  /** @returns {Blob} the whole resource; the store must be complete. */
  toBlob(type) {
    return new Blob(this.blocks, { type: type || '' });
  }
}
