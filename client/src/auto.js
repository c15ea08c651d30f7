// Auto mode (data-auto="*.mp4 /downloads/*"): with no page code, same-origin
// links and images whose paths match are fetched through the swarm. Any
// failure falls back, visibly, to what the browser would have done anyway:
// the link navigates (or downloads) normally, the image gets its own src back.
//
// Images and the preload scanner: by the time any script sees an <img>, the
// browser has usually asked for it already (the preload scanner reads ahead
// of the parser, and setting src starts a load before a MutationObserver
// hears of it). We take the src away at first sight: Chromium cancels an
// image load nobody displays any more, so little of it arrives, and the
// swarm delivers the image instead, shown from a blob URL. An image that is
// already complete (from cache) is left alone: its bytes are here. Images
// with srcset, inside <picture>, or loading="lazy" are left alone too (the
// browser picks or defers those; fetching them here would defeat that).
//
// Elements carry data-p2pxhr="loading" while the swarm works, then "p2p"
// (delivered) or "http" (fallback), for styling and for tests. While
// loading they carry data-p2pxhr-progress (a whole percentage) and get a
// `progress` event (a ProgressEvent with bytesFromHttp, bytesFromPeers,
// peers; it does not bubble: listen on the element or capture on the
// document) after every verified block. Links being downloaded show that
// percentage after their text, from a zero-specificity style a page
// overrides with any rule of its own, or turns off with
// data-auto-indicator="off".
//
// Saving a link to disk: where the File System Access API exists
// (showSaveFilePicker: Chromium on desktop), a file of at least
// diskSaveMin bytes (data-disk-save-min, default 64 MiB) is written to the
// place the visitor picks, block by block as blocks are verified, and no
// copy of the whole file is made to save it. The picker needs the click's
// user activation, so the manifest must name the size within a few seconds
// of the click. Elsewhere (Firefox, Safari, smaller files, a slow
// manifest) the file is handed to the browser's download from a blob URL.
// Either way the page keeps the blocks, as Blobs the browser may page out
// of memory, to serve other visitors.

import { progressEvent } from './events.js';
import { blockRange } from './hash.js';

const SAVED_URL_LIFETIME = 60000; // revoking a download's blob URL at once can cancel the save
const INDICATOR = `:where(a[data-p2pxhr="loading"]) { cursor: progress; }
:where(a[data-p2pxhr="loading"])::after { content: " " attr(data-p2pxhr-progress) "%"; opacity: .7; font-variant-numeric: tabular-nums; }`;

/**
 * The patterns' matcher, with the semantics of Caddy's path matcher (as for
 * `paths` and `inject_exclude`): case-insensitive on the decoded, cleaned
 * path; `*.ext` a suffix, `/dir/*` a prefix, `*text*` a substring when those
 * are the only stars, else a glob (`*` and `?` within one segment, `[...]`);
 * no star, an exact path. Patterns with `%` (escaped matching) are not
 * supported and never match. Checked against protocol/testdata/path_match_vectors.json.
 * @returns {((u: URL) => boolean) | null} null without patterns
 */
export function matcher(spec) {
  const pats = (Array.isArray(spec) ? spec.join(' ') : String(spec || '')).toLowerCase().split(/\s+/).filter(Boolean);
  if (!pats.length) return null;
  return (u) => {
    let p = u.pathname;
    try { p = decodeURIComponent(p); } catch { /* keep it encoded */ }
    p = p.toLowerCase();
    return pats.some((x) => pathMatches(x, p));
  };
}

/** One lower-case pattern against a decoded, lower-case path, as caddyhttp.MatchPath. */
export function pathMatches(pattern, path) {
  if (pattern === '*') return true;
  if (pattern.includes('%')) return false;
  const p = cleanPath(path, !pattern.includes('//'));
  const stars = pattern.split('*').length - 1;
  if (stars === 2 && pattern.startsWith('*') && pattern.endsWith('*')) return p.includes(pattern.slice(1, -1));
  if (stars === 1 && pattern.startsWith('*')) return p.endsWith(pattern.slice(1));
  if (stars === 1 && pattern.endsWith('*')) return p.startsWith(pattern.slice(0, -1));
  const re = globRegExp(pattern);
  return re !== null && re.test(p);
}

// cleanPath is Go's path.Clean keeping a trailing slash, with doubled
// slashes kept when the pattern has some (Caddy's CleanPath).
function cleanPath(p, mergeSlashes) {
  const parts = p.split('/');
  const out = [];
  for (let i = 1; i < parts.length; i++) {
    const s = parts[i];
    if (s === '.' || (s === '' && (mergeSlashes || i === parts.length - 1))) continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  const c = '/' + out.join('/');
  return c !== '/' && p.length > 1 && p.endsWith('/') ? c + '/' : c;
}

const escapeRe = (ch) => ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

// globRegExp translates a path.Match pattern; null when it is malformed.
function globRegExp(pattern) {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= pattern.length) return null;
      re += escapeRe(pattern[i]);
    } else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return null;
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^')) body = '^' + body.slice(1).replace(/[\\\]^]/g, '\\$&');
      else body = body.replace(/[\\\]^]/g, '\\$&');
      re += '[' + body + ']';
      i = end;
    } else re += escapeRe(c);
  }
  try { return new RegExp(re + '$'); } catch { return null; }
}

/** Starts auto mode for the page when config.auto has patterns. */
export function startAuto(client, config) {
  const match = matcher(config.auto);
  if (!match) return;
  if (config.autoIndicator) addStyle(INDICATOR);
  const passing = new WeakSet(); // anchors whose next click is ours to let through
  const busy = new WeakSet(); // links being downloaded
  const pending = new WeakSet(); // images being fetched
  const restored = new WeakMap(); // image → the src given back after a failure (not to try again)

  // pick: the URL when it is ours to accelerate (same origin, shareable, matching).
  const pick = (href) => {
    const u = /^https?:/i.test(href) ? client.shareable('GET', href, false, []) : null;
    return u && match(u) ? u : null;
  };
  const mark = (el, state) => {
    el.setAttribute('data-p2pxhr', state);
    if (state !== 'loading') el.removeAttribute('data-p2pxhr-progress');
  };
  // hooks report a transfer's progress on its element.
  const hooks = (el, onManifest) => {
    let shown = -1;
    el.setAttribute('data-p2pxhr-progress', '0');
    return {
      restartable: true, // the element takes the whole result, of whichever version
      onManifest: onManifest || (() => {}),
      onProgress(s) {
        const pct = s.total ? Math.floor((100 * s.loaded) / s.total) : 0;
        if (pct !== shown) el.setAttribute('data-p2pxhr-progress', String((shown = pct)));
        el.dispatchEvent(progressEvent('progress', s.loaded, s.total, s));
      },
    };
  };

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.hidden = true;
    passing.add(a);
    (document.body || document.documentElement).appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), SAVED_URL_LIFETIME);
  }

  // Bubbling at the document, after the page's own handlers: a click a page
  // cancelled stays cancelled, and modifier or middle clicks (new tab,
  // save as) keep their meaning.
  document.addEventListener('click', (e) => {
    const a = e.target instanceof Element ? e.target.closest('a[href]') : null;
    if (!a || passing.delete(a) || e.defaultPrevented || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    if (a.target && a.target !== '_self' && !a.hasAttribute('download')) return; // opens elsewhere
    const u = pick(a.href);
    if (!u) return;
    e.preventDefault();
    if (busy.has(a)) return; // a second click while it downloads
    busy.add(a);
    mark(a, 'loading');
    let name = a.getAttribute('download');
    if (!name) {
      name = u.pathname.slice(u.pathname.lastIndexOf('/') + 1);
      try { name = decodeURIComponent(name); } catch { /* keep it encoded */ }
    }
    const ac = new AbortController();
    let disk = null; // the file being written, once the visitor picked a place
    const h = hooks(a, (m) => {
      if (typeof showSaveFilePicker !== 'function' || !(m.size >= config.diskSaveMin)) return;
      disk = diskFile(client, m, name).catch((err) => {
        // Cancelled: the visitor wants no file. Anything else (no user
        // activation left, say): the blob URL road.
        if (err && err.name === 'AbortError') ac.abort(err);
        return null;
      });
    });
    const onProgress = h.onProgress;
    h.onProgress = (s) => { onProgress(s); if (disk) disk.then((f) => f && f.catchUp()); };
    const cancelled = () => {
      a.removeAttribute('data-p2pxhr');
      a.removeAttribute('data-p2pxhr-progress');
    };
    client.transfer(u, h, ac.signal).then(async (r) => {
      if (!r) throw new Error('not shared');
      const f = disk && (await disk);
      if (ac.signal.aborted) return cancelled(); // the picker was cancelled after the last block
      if (f) await f.finish(r);
      else save(r.blob, name);
      mark(a, 'p2p');
    }).catch(async () => {
      const f = disk && (await disk);
      if (f) f.abort();
      if (ac.signal.aborted) return cancelled();
      mark(a, 'http');
      passing.add(a);
      a.click(); // the browser's own navigation or download
    }).finally(() => busy.delete(a));
  });

  function image(img) {
    const src = img.getAttribute('src');
    if (!src || pending.has(img) || restored.get(img) === src) return;
    if (img.hasAttribute('srcset') || img.loading === 'lazy' || (img.parentElement && img.parentElement.localName === 'picture')) return;
    if (img.complete && img.naturalWidth) return; // already here
    const u = pick(img.src);
    if (!u) return;
    pending.add(img);
    mark(img, 'loading');
    img.removeAttribute('src'); // cancels the native load; no error event without a src
    client.transfer(u, hooks(img)).then((r) => {
      if (!r) throw new Error('not shared');
      if (img.hasAttribute('src')) return; // the page set its own src meanwhile: it wins
      img.src = URL.createObjectURL(r.blob); // kept: the image may be decoded again
      mark(img, 'p2p');
    }).catch(() => {
      restored.set(img, src);
      mark(img, 'http');
      if (!img.hasAttribute('src')) img.setAttribute('src', src);
    }).finally(() => pending.delete(img));
  }

  const scan = (n) => {
    if (n.localName === 'img') image(n);
    else if (n.querySelectorAll) for (const i of n.querySelectorAll('img[src]')) image(i);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') { if (r.target.localName === 'img') image(r.target); }
      else for (const n of r.addedNodes) if (n.nodeType === 1) scan(n);
    }
  }).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['src'] });
  scan(document);
}

// addStyle adds rules as a constructed stylesheet, which a page's
// Content-Security-Policy does not block, else as a <style> element.
function addStyle(css) {
  try {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  } catch {
    const style = document.createElement('style');
    style.textContent = css;
    (document.head || document.documentElement).appendChild(style);
  }
}

/**
 * Asks the visitor where to save manifest m's file and writes its verified
 * blocks there as they arrive: catchUp() after progress, finish(result)
 * at the end (the result's reader fills what is missing, all of it if the
 * origin changed and the transfer restarted on another manifest), abort()
 * on failure, which leaves no file behind.
 */
async function diskFile(client, m, name) {
  const handle = await showSaveFilePicker({ suggestedName: name });
  const out = await handle.createWritable();
  let written = new Array(m.blocks.length).fill(false);
  let chain = Promise.resolve();
  const queue = (job) => (chain = chain.then(job));
  const write = async (manifest, i, bytes) => {
    await out.write({ type: 'write', position: blockRange(manifest, i)[0], data: bytes });
    written[i] = true;
  };
  let catching = false; // a catch-up is queued: progress comes per block, one pass serves many
  return {
    catchUp: () => !catching && (catching = true) && queue(async () => {
      catching = false;
      const s = client.swarms.get(m.id);
      for (let i = 0; s && i < written.length; i++) {
        if (written[i] || !s.store.has(i)) continue;
        const b = await s.store.read(i);
        if (b) await write(m, i, b);
      }
    }),
    finish: (r) => queue(async () => {
      const fm = r.manifest;
      if (fm.id !== m.id) {
        written = new Array(fm.blocks.length).fill(false);
        await out.truncate(fm.size);
      }
      for (let i = 0; i < written.length; i++) {
        if (!written[i]) await write(fm, i, (await r.read(i)).bytes);
      }
      await out.close();
    }),
    abort: () => queue(() => out.abort()).catch(() => {}),
  };
}
