// Block verification with WebCrypto: every block is checked against the
// manifest before it is used, counted, announced or served, so neither a
// lying peer nor a changed origin can put a wrong byte into a result.

const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, '0')).join('');

/** @returns {Promise<string>} the lowercase hex SHA-256 of bytes. */
export async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

/** @returns {[number, number]} the byte offset and length of block i. */
export function blockRange(manifest, i) {
  const off = i * manifest.blockSize;
  return [off, Math.min(manifest.blockSize, manifest.size - off)];
}

/** @returns {Promise<boolean>} whether bytes are block i of manifest. */
export async function verifyBlock(manifest, i, bytes) {
  return i >= 0 && i < manifest.blocks.length && bytes.length === blockRange(manifest, i)[1] &&
    (await sha256Hex(bytes)) === manifest.blocks[i];
}
