// One console warning per distinct message, so a page that is set up
// wrongly hears it once, not at every request.
const said = new Set();

export function warn(msg) {
  if (said.has(msg)) return;
  said.add(msg);
  try { console.warn('p2pxhr: ' + msg); } catch { /* no console */ }
}
