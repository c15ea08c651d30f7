// HTTP range requests for single blocks. If-Range makes an origin whose
// file changed answer 200 with the new bytes instead of a range of them, so
// versions are never mixed: that, a 416, or a different total size mean
// OriginChanged and the transfer restarts on a new manifest.
import { blockRange, verifyBlock } from './hash.js';
import { nativeFetch } from './native.js';

/** The origin no longer serves the bytes of the manifest. */
export class OriginChanged extends Error {
  constructor(message) { super(message); this.name = 'OriginChanged'; this.code = 'origin-changed'; }
}

/** @returns {Promise<Uint8Array>} block i of manifest, read from url. */
export async function fetchBlock(url, manifest, i, signal) {
  const [off, n] = blockRange(manifest, i);
  const headers = { Range: `bytes=${off}-${off + n - 1}` };
  const etag = manifest.etag || '';
  // If-Range needs a strong validator.
  const validator = etag && !etag.startsWith('W/') ? etag : manifest.lastModified;
  if (validator) headers['If-Range'] = validator;
  const res = await nativeFetch(url, { headers, credentials: 'omit', cache: 'no-store', signal });
  if (res.status === 206) {
    const cr = res.headers.get('Content-Range') || '';
    const want = `bytes ${off}-${off + n - 1}/`;
    if (!cr.startsWith(want)) throw new Error(`block ${i}: Content-Range ${cr}, want ${want}…`);
    const total = cr.slice(want.length);
    if (total !== '*' && total !== String(manifest.size)) throw new OriginChanged(`resource is ${total} bytes, manifest says ${manifest.size}`);
    const b = new Uint8Array(await res.arrayBuffer());
    if (b.length !== n) throw new Error(`block ${i}: ${b.length} bytes, want ${n}`);
    return b;
  }
  if (res.status === 200) {
    const len = res.headers.get('Content-Length');
    if (validator || (len !== null && +len !== manifest.size)) throw new OriginChanged(`block ${i}: HTTP 200 to a range request`);
    // No validator and ranges ignored: costly, but still verified after.
    return new Uint8Array(await res.arrayBuffer()).slice(off, off + n);
  }
  if (res.status === 416) throw new OriginChanged(`block ${i}: HTTP 416`);
  throw new Error(`block ${i}: HTTP ${res.status}`);
}

/** @returns {Promise<Uint8Array>} block i of manifest from url, verified against its hash. */
export async function fetchVerifiedBlock(url, manifest, i, signal) {
  const b = await fetchBlock(url, manifest, i, signal);
  if (!(await verifyBlock(manifest, i, b))) throw new OriginChanged(`block ${i} from HTTP fails its hash`);
  return b;
}
