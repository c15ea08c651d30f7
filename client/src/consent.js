// Whether this visitor's browser may upload and keep files: the site's
// policy (the coordinator's welcome: always, consent or never; the last
// one seen is remembered so a page can decide before its welcome) and the
// visitor's consent, recorded by the page with peer5.consent(). The
// site's tabs tell each other of changes on one BroadcastChannel.

const CONSENT = 'p2pxhr-consent', POLICY = 'p2pxhr-policy', CACHED = 'p2pxhr-cached';

function load(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}

function store(key, v) {
  try { localStorage.setItem(key, v); } catch { /* storage refused: this page only */ }
}

/** @returns {boolean|null} the consent recorded in this browser, null if none. */
export function consentGiven() {
  const v = load(CONSENT);
  return v === '1' ? true : v === '0' ? false : null;
}

export function recordConsent(v) { store(CONSENT, v ? '1' : '0'); }

/** The site's policy as last seen, or null. */
export const rememberedPolicy = () => load(POLICY);

/** The site's policy as last seen ('always' before any welcome). */
export function policy() { return rememberedPolicy() || 'always'; }

export function rememberPolicy(p) { if (p !== rememberedPolicy()) store(POLICY, p); }

/** Whether the policy lets this visitor upload (a page option may still say no). */
export function uploadAllowed(p) {
  p = p || policy();
  return p === 'always' || (p === 'consent' && consentGiven() === true);
}

/** Whether files may be kept in the persistent cache: not where the visitor's consent is needed and missing. */
export function keepAllowed(p) {
  return (p || policy()) !== 'consent' || consentGiven() === true;
}

/** Whether this browser's cache may hold something (set when a file is kept, cleared by a wipe). */
export const cached = () => load(CACHED) === '1';

export function markCached(v) { store(CACHED, v ? '1' : '0'); }

/** The site's tabs' channel: {type: 'cached'|'consent'|'wipe'} messages; null without BroadcastChannel. */
export function channel(onMessage) {
  if (!self.BroadcastChannel) return null;
  const ch = new BroadcastChannel('p2pxhr');
  ch.onmessage = (e) => onMessage(e.data || {});
  return ch;
}
