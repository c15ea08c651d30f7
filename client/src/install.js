// install makes the page's one client and publishes it: window.p2pxhr
// always, and window.peer5 without taking anything from a page that already
// has one (another SDK, or its own config object with more fields).
import { readConfig } from './config.js';
import { Client } from './client.js';
import { makeRequest } from './request.js';
import { makeFetch } from './fetch.js';
import { loadChunk } from './chunk.js';
import { warn } from './warn.js';
import { Persistence } from './persist.js';
import { Swarm } from './swarm.js';
import { serviceWorker } from './register.js';

export const VERSION = '0.3.0';
/* global __P2PXHR_AUTO__ */
const AUTO = typeof __P2PXHR_AUTO__ === 'string' ? __P2PXHR_AUTO__ : '';
const API = ['version', 'config', 'Request', 'fetch', 'stats', 'consent'];

/**
 * @param {Element|null} script the client's tag, for its data-* options
 * @param {string} [ownURL] the URL the client was loaded from
 * @returns {{version: string, config: object, Request: Function, fetch: Function, stats: Function}}
 */
export function install(script, ownURL) {
  // Loaded twice (a page's own tag and the injected one, or client.js and
  // client.mjs): one client, the first.
  if (window.p2pxhr && window.p2pxhr.version) return window.p2pxhr;
  const prev = window.peer5;
  const isObject = prev !== null && (typeof prev === 'object' || typeof prev === 'function');
  let preset = isObject ? prev.config : undefined;
  if (preset !== undefined && (preset === null || typeof preset !== 'object')) {
    warn(`window.peer5.config is ${preset === null ? 'null' : 'a ' + typeof preset}, not an object of options; ignored`);
    preset = undefined;
  }
  const config = readConfig(script, preset, prefixOf(script ? script.src : ownURL));
  const client = new Client(config);
  // The persistent cache and seeding, loaded on demand (persist.js).
  const persist = (client.persist = new Persistence(client, Swarm, script));
  const sw = serviceWorker(client, script);
  const api = { version: VERSION, config, Request: makeRequest(client), fetch: makeFetch(client),
    stats: (url) => (url === undefined ? { ...client.stats(), seeding: persist.stats(), serviceWorker: sw() } : client.stats(url)),
    consent: (v) => persist.consent(v) };
  window.p2pxhr = api;
  if (prev === undefined) {
    window.peer5 = api;
  } else if (!isObject) {
    warn(`window.peer5 is a ${typeof prev}, left as it is; the client is window.p2pxhr`);
  } else {
    const taken = [];
    for (const k of API) {
      if (prev[k] === undefined) {
        try { prev[k] = api[k]; } catch { taken.push(k); }
      } else if (prev[k] !== api[k]) {
        taken.push(k);
      }
    }
    if (taken.length) warn(`window.peer5 already has ${taken.join(', ')} from another script; kept as they are. The P2PXHR client is window.p2pxhr`);
  }
  // Auto mode is a chunk of its own, {prefix}auto.js: only pages of sites
  // that turn it on load it.
  const auto = config.auto;
  if (auto && (typeof auto !== 'string' || auto.trim())) {
    loadChunk(config.prefix, 'auto', AUTO, '__p2pxhrAuto', (script && script.nonce) || '')
      .then((m) => m.startAuto(client, config), () => warn('auto mode is off on this page: its script, ' + config.prefix + 'auto.js, did not load'));
  }
  return api;
}

/**
 * The client's own tag: document.currentScript is null in module scripts
 * and after load, so the tag is found by its src: the one naming ownURL, or
 * else the last client.js or client.mjs tag, preferring one with data-prefix.
 * @returns {HTMLScriptElement|null}
 */
export function ownScript(ownURL) {
  let found = null;
  for (const s of document.querySelectorAll('script[src]')) {
    let u;
    try { u = new URL(s.getAttribute('src'), location.href); } catch { continue; }
    if (ownURL && u.href === ownURL) return s;
    if (/\/client\.m?js$/.test(u.pathname) && (!found || s.hasAttribute('data-prefix') || !found.hasAttribute('data-prefix'))) found = s;
  }
  return found;
}

// prefixOf is the folder a same-origin client.js or client.mjs was served
// from: its routes' prefix when nothing else names it. A copy of the client
// inside a site's own bundle (another file name, a blob: URL) says nothing
// about the prefix: the default applies.
function prefixOf(url) {
  try {
    const u = new URL(url, location.href);
    const served = (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === location.origin && /\/client\.m?js$/.test(u.pathname);
    return served ? u.pathname.replace(/[^/]*$/, '') : '';
  } catch {
    return '';
  }
}
