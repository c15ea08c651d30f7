// Options come from data-* attributes on the client's script tag (what the
// Caddy module injects) and from a `peer5.config` object a page may set
// before the script loads; the attribute wins. That object itself becomes
// the config (defaults filled in, its other fields kept), so it stays live:
// pages may change it later (peer5.config.p2p = false) and new requests
// follow.
import { warn } from './warn.js';

const DEFAULTS = { prefix: '/_p2pxhr/', iceServers: [], maxPeers: 6, upload: true, p2p: true, group: '', auto: '', maxSeedBytes: 512 << 20, autoIndicator: true, diskSaveMin: 64 << 20,
  // The persistent cache and seeding from it while the visitor is on the site (cache.js, seeder.js).
  cacheSize: 2 ** 30, seed: true, seedPeers: 4, seedPerVisit: 256 * 2 ** 20, seedPerDay: 2 ** 30, seedHidden: 600, seedCellular: false,
  // Service worker mode (register.js): the scope to register {prefix}sw.js for, or 'off' to unregister it.
  serviceWorker: '' };

/**
 * @param {Element|null} script the client's tag, for its data-* options
 * @param {object|undefined} preset the page's peer5.config, kept as the config object
 * @param {string} [ownPrefix] the prefix the client was loaded from, when no option names one
 */
export function readConfig(script, preset, ownPrefix) {
  const c = preset && typeof preset === 'object' ? preset : {};
  for (const [k, v] of Object.entries(DEFAULTS)) {
    if (c[k] === undefined) c[k] = k === 'prefix' && ownPrefix ? ownPrefix : v;
  }
  const attr = (n) => (script ? script.getAttribute('data-' + n) : null);
  const on = (v) => v !== 'off' && v !== 'false' && v !== '0';
  let v;
  if ((v = attr('prefix'))) c.prefix = v.endsWith('/') ? v : v + '/';
  if ((v = attr('ice-servers') || attr('ice'))) {
    try {
      const servers = JSON.parse(v);
      if (!Array.isArray(servers)) throw new TypeError('not an array');
      c.iceServers = servers;
    } catch (e) {
      // A bad option must not break the page, nor pass unnoticed.
      warn(`data-ice-servers is not a JSON array of ICE servers (${e.message}); using ${JSON.stringify(c.iceServers)}`);
    }
  }
  if ((v = attr('max-peers')) !== null) {
    if (v !== '' && +v >= 0) c.maxPeers = +v;
    else warn(`data-max-peers="${v}" is not a number of peers; using ${c.maxPeers}`);
  }
  if ((v = attr('upload')) !== null) c.upload = on(v);
  if ((v = attr('p2p')) !== null) c.p2p = on(v);
  if ((v = attr('group'))) c.group = v;
  if ((v = attr('auto'))) c.auto = v;
  if ((v = attr('auto-indicator')) !== null) c.autoIndicator = on(v);
  if ((v = attr('disk-save-min')) !== null) c.diskSaveMin = v === 'off' ? Infinity : +v >= 0 ? +v : c.diskSaveMin;
  // Sizes in bytes and seed-hidden in seconds; 'off' is 0 for the cache, no limit for seed-hidden.
  for (const [a, k, off] of [['cache-size', 'cacheSize', 0], ['seed-peers', 'seedPeers', 0], ['seed-per-visit', 'seedPerVisit', 0],
    ['seed-per-day', 'seedPerDay', 0], ['seed-hidden', 'seedHidden', Infinity]]) {
    if ((v = attr(a)) !== null) c[k] = v === 'off' ? off : +v >= 0 ? +v : c[k];
  }
  if ((v = attr('seed')) !== null) c.seed = on(v);
  if ((v = attr('sw')) !== null) c.serviceWorker = v;
  if ((v = attr('seed-cellular')) !== null) c.seedCellular = on(v);
  return c;
}
