// Options come from data-* attributes on the client's script tag (what the
// Caddy module injects) and from a `peer5.config` object a page may set
// before the script loads; the attribute wins. The object stays live:
// pages may change it later (peer5.config.p2p = false) and new requests
// follow.

const DEFAULTS = { prefix: '/_p2pxhr/', iceServers: [], maxPeers: 6, upload: true, p2p: true, group: '', auto: '', maxSeedBytes: 512 << 20, autoIndicator: true, diskSaveMin: 64 << 20 };

export function readConfig(script, preset) {
  const c = Object.assign({}, DEFAULTS, preset || {});
  const attr = (n) => (script ? script.getAttribute('data-' + n) : null);
  const on = (v) => v !== 'off' && v !== 'false' && v !== '0';
  let v;
  if ((v = attr('prefix'))) c.prefix = v.endsWith('/') ? v : v + '/';
  if ((v = attr('ice-servers') || attr('ice'))) {
    try { c.iceServers = JSON.parse(v); } catch { /* keep the default: a bad option must not break the page */ }
  }
  if ((v = attr('max-peers')) && +v >= 0) c.maxPeers = +v;
  if ((v = attr('upload')) !== null) c.upload = on(v);
  if ((v = attr('p2p')) !== null) c.p2p = on(v);
  if ((v = attr('group'))) c.group = v;
  if ((v = attr('auto'))) c.auto = v;
  if ((v = attr('auto-indicator')) !== null) c.autoIndicator = on(v);
  if ((v = attr('disk-save-min')) !== null) c.diskSaveMin = v === 'off' ? Infinity : +v >= 0 ? +v : c.diskSaveMin;
  return c;
}
