// Manifests come from {prefix}manifest?url=<path>. Anything but a 200 with
// a well-formed manifest means "not shareable": the request goes to a
// native XMLHttpRequest or fetch instead.

import { nativeFetch } from './native.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** @returns {Promise<object|null>} the manifest of the same-origin URL u, or null. */
export async function fetchManifest(prefix, u, signal) {
  const res = await nativeFetch(prefix + 'manifest?url=' + encodeURIComponent(u.pathname + u.search), {
    credentials: 'omit', cache: 'no-cache', signal,
  });
  if (res.status !== 200) return null;
  const m = await res.json().catch(() => null);
  if (!m || !valid(m)) return null;
  m.responseDate = res.headers.get('date'); // a shared response shows the server's time of now
  return m;
}

/** Whether m is a well-formed manifest. */
export function valid(m) {
  return HEX64.test(m.id) && Number.isSafeInteger(m.size) && m.size > 0 && Number.isInteger(m.blockSize) &&
    m.blockSize >= 16384 && m.blockSize <= 4 << 20 && Array.isArray(m.blocks) &&
    m.blocks.length === Math.ceil(m.size / m.blockSize) && m.blocks.every((b) => HEX64.test(b));
}
