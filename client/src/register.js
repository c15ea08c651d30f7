// Service worker mode, the part in every page: registering the module's
// worker ({prefix}sw.js) for the scope on the tag (data-sw="/"), or
// unregistering it when the site turned the mode off (data-sw="off") or
// the visitor is in the A/B "http" group; and, when the worker asks, loading
// the page's side of it (the chunk {prefix}bridge.js) to carry blocks
// between the swarm and the worker. A site that has a worker of its own at
// that scope keeps it: the client registers nothing there and says how to
// import the module's worker into it.
import { loadChunk } from './chunk.js';
import { Download } from './download.js';
import { BlockScheduler } from './scheduler.js';
import { warn } from './warn.js';

/* global __P2PXHR_BRIDGE__ */
const VERSION = typeof __P2PXHR_BRIDGE__ === 'string' ? __P2PXHR_BRIDGE__ : '';

/** Starts service worker mode on this page; returns peer5.stats().serviceWorker's getter. */
export function serviceWorker(client, script) {
  const stats = { requests: 0, bytesFromHttp: 0, bytesFromPeers: 0, bytesFromCache: 0 };
  const get = () => ({ ...stats });
  const sw = navigator.serviceWorker, c = client.config;
  if (!sw) return get;
  const url = new URL(c.prefix + 'sw.js', location.href).href;
  const ours = (w) => !!w && w.scriptURL === url;
  const scope = c.serviceWorker;
  const off = scope === 'off' || c.group === 'http';
  let bridge = null;
  sw.addEventListener('message', (e) => {
    const d = e.data;
    if (!d || typeof d.p2pxhr !== 'string') return;
    if (d.p2pxhr === 'stats') Object.assign(stats, d.stats);
    else if (d.p2pxhr !== 'ping') bridge && bridge.then((b) => b && b.message(d, e.source));
    else if (!c.p2p || off || typeof RTCPeerConnection !== 'function' || !crypto.subtle) e.source.postMessage({ p2pxhr: c.p2p && !off ? 'none' : 'off' });
    else {
      bridge = bridge || loadChunk(c.prefix, 'bridge', VERSION, '__p2pxhrBridge', (script && script.nonce) || '')
        .then((mod) => new (mod.makeBridge({ Download, BlockScheduler }))(client)).catch(() => null);
      bridge.then((b) => b && b.hello(e.source));
    }
  });
  sw.startMessages();
  if (off) {
    if (ours(sw.controller)) sw.getRegistration().then((r) => r && ours(r.active) && r.unregister()).catch(() => {});
    return get;
  }
  if (!scope || !c.p2p) return get;
  const register = () => sw.getRegistration(scope).then((r) => {
    const w = r && (r.active || r.waiting || r.installing);
    if (w && !ours(w)) {
      warn(`this site has its own service worker at ${r.scope}; P2PXHR's is not registered there. Add importScripts('${c.prefix}sw.js') at the top of that worker to share its files through the swarm`);
      return;
    }
    return sw.register(url, { scope });
  }).catch(() => { /* refused (policy, private mode): pages work as without it */ });
  if (document.readyState === 'complete') register();
  else addEventListener('load', register, { once: true });
  return get;
}
