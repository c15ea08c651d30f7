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
// (delivered) or "http" (fallback), for styling and for tests.

const NOHOOKS = { onManifest() {}, onProgress() {} };
const SAVED_URL_LIFETIME = 60000; // revoking a download's blob URL at once can cancel the save

/**
 * The patterns' matcher: `*.ext` matches a path suffix, `/dir/*` a prefix,
 * anything else one exact path; case-insensitive like Caddy's path matcher.
 * @returns {((u: URL) => boolean) | null} null without patterns
 */
export function matcher(spec) {
  const pats = (Array.isArray(spec) ? spec.join(' ') : String(spec || '')).toLowerCase().split(/\s+/).filter(Boolean);
  if (!pats.length) return null;
  return (u) => {
    let p = u.pathname;
    try { p = decodeURIComponent(p); } catch { /* keep it encoded */ }
    p = p.toLowerCase();
    return pats.some((x) => (x[0] === '*' ? p.endsWith(x.slice(1)) : x.endsWith('*') ? p.startsWith(x.slice(0, -1)) : p === x));
  };
}

/** Starts auto mode for the page when config.auto has patterns. */
export function startAuto(client, config) {
  const match = matcher(config.auto);
  if (!match) return;
  const passing = new WeakSet(); // anchors whose next click is ours to let through
  const busy = new WeakSet(); // links being downloaded
  const pending = new WeakSet(); // images being fetched
  const restored = new WeakMap(); // image → the src given back after a failure (not to try again)

  // pick: the URL when it is ours to accelerate (same origin, shareable, matching).
  const pick = (href) => {
    const u = /^https?:/i.test(href) ? client.shareable('GET', href, false, []) : null;
    return u && match(u) ? u : null;
  };
  const mark = (el, state) => el.setAttribute('data-p2pxhr', state);

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
    client.transfer(u, NOHOOKS).then((r) => {
      if (!r) throw new Error('not shared');
      save(r.blob, name);
      mark(a, 'p2p');
    }).catch(() => {
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
    client.transfer(u, NOHOOKS).then((r) => {
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
