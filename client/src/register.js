// Service worker mode, the part in every page, kept small: answering the
// module's worker ({prefix}sw.js) when it asks whether this page can carry
// swarms for it, and loading the rest (the chunk {prefix}bridge.js) when
// it can, or when the page is to register the worker (data-sw="/", the
// scope); unregistering the worker when the site turned the mode off
// (data-sw="off") or the visitor is in the A/B "http" group.
import { loadChunk } from './chunk.js';
import { Download } from './download.js';
import { BlockScheduler } from './scheduler.js';

/* global __P2PXHR_BRIDGE__ */
const VERSION = typeof __P2PXHR_BRIDGE__ === 'string' ? __P2PXHR_BRIDGE__ : '';
const REGISTER_DELAY = 1500;

/** Starts service worker mode on this page; returns peer5.stats().serviceWorker's getter. */
export function serviceWorker(client, script) {
  let stats = { requests: 0, bytesFromHttp: 0, bytesFromPeers: 0, bytesFromCache: 0 }, bridge;
  const sw = navigator.serviceWorker, c = client.config, scope = c.serviceWorker;
  const url = new URL(c.prefix + 'sw.js', location.href).href;
  const off = scope === 'off' || c.group === 'http';
  const load = () => (bridge = bridge || loadChunk(c.prefix, 'bridge', VERSION, '__p2pxhrBridge', (script && script.nonce) || '')
    .then((mod) => new (mod.makeBridge({ Download, BlockScheduler }))(client, url)).catch(() => null));
  if (sw) {
    sw.addEventListener('message', (e) => {
      const d = e.data;
      if (!d || typeof d.p2pxhr !== 'string') return;
      if (d.p2pxhr === 'stats') stats = d.stats;
      // (A worker and its pages live in secure contexts: crypto.subtle is there.)
      else if (c.p2p && !off && self.RTCPeerConnection) load().then((b) => b && b.message(d, e.source));
      else if (d.p2pxhr === 'ping') e.source.postMessage({ p2pxhr: c.p2p && !off ? 'none' : 'off' });
    });
    sw.startMessages();
    if (off) {
      if (sw.controller && sw.controller.scriptURL === url) sw.getRegistration().then((r) => r && r.unregister()).catch(() => {});
    } else if (scope && c.p2p) {
      // A while after the load event, when a site that registers a worker
      // of its own (often on load) has done so: never over that one.
      const register = () => setTimeout(() => load().then((b) => b && b.register(scope)), REGISTER_DELAY);
      if (document.readyState === 'complete') register();
      else addEventListener('load', register, { once: true });
    }
  }
  return () => ({ ...stats });
}
