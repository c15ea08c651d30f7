// Bitfields: one bit per block, most significant bit first (block i is bit
// 7 - i%8 of byte i/8), the same bits in the peer hello and in the
// coordinator's base64 join. Padding bits stay zero so each set of blocks
// has exactly one encoding.

/** @returns {Uint8Array} the bitfield of the blocks set in `have` (booleans). */
export function toBits(have) {
  const b = new Uint8Array((have.length + 7) >> 3);
  have.forEach((h, i) => { if (h) b[i >> 3] |= 0x80 >> (i & 7); });
  return b;
}

/** @returns {boolean[]} n booleans read from bitfield b. */
export function fromBits(b, n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (b[i >> 3] & (0x80 >> (i & 7))) !== 0;
  return out;
}

/** Standard padded base64 of bytes, what the coordinator expects. */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
