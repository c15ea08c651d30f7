// loadChunk loads one of the client's chunks, {prefix}<name>.js at its
// version: a classic script carrying the client tag's nonce (so it runs
// under the same Content-Security-Policy) that defines the global named.
/** @returns {Promise<object>} the chunk's exports */
export function loadChunk(prefix, name, version, global, nonce) {
  if (self[global]) return Promise.resolve(self[global]);
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = prefix + name + '.js?v=' + version;
    if (nonce) s.nonce = nonce;
    s.onload = () => (self[global] ? resolve(self[global]) : reject(new Error(`p2pxhr: ${name}.js defined nothing`)));
    s.onerror = () => reject(new Error(`p2pxhr: ${name}.js did not load`));
    (document.head || document.documentElement).appendChild(s);
  });
}
