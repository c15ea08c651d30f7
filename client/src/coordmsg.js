// Coordinator messages (protocol/coordinator_messages.go): JSON text
// frames. Builders emit the keys in the Go struct order with "type" first,
// so a message built here is byte-identical to the Go encoding (checked
// against protocol/testdata/coordinator_vectors.json).
import { toBits, toBase64 } from './bitfield.js';

export const VERSION = 1;

export const hello = (group) => (group ? { type: 'hello', version: VERSION, group } : { type: 'hello', version: VERSION });

export function join(swarm, url, have, seed) {
  const m = { type: 'join', swarm };
  if (url) m.url = url;
  m.blocks = have.length;
  m.bitfield = toBase64(toBits(have));
  if (seed) m.seed = true;
  return m;
}

export function signal(swarm, to, kind, data, mid) {
  const m = { type: 'signal', swarm, to, kind, data };
  if (mid) m.mid = mid;
  return m;
}

export const have = (swarm, blocks) => ({ type: 'have', swarm, blocks });
export const leave = (swarm) => ({ type: 'leave', swarm });
export const stats = (swarm, s) => ({ type: 'stats', swarm, bytesFromHttp: s.fromHttp, bytesFromPeers: s.fromPeers, bytesUploaded: s.uploaded });
export const report = (swarm, peer, reason) => ({ type: 'report', swarm, peer, reason });
export const received = (swarm, peer) => ({ type: 'received', swarm, peer });

/** How one connection attempt ended: result 'connected' with path, or 'failed'. */
export function connection(swarm, peer, result, path) {
  const m = { type: 'connection', swarm, peer, result };
  if (path) m.path = path;
  return m;
}

/** Leases wanted at once, and blocks fetched from the origin on our own (docs/PROTOCOL.md 3.9). */
export function fetch(swarm, want, claim) {
  const m = { type: 'fetch', swarm, want };
  if (claim && claim.length) m.claim = claim;
  return m;
}

export const release = (swarm, blocks) => ({ type: 'release', swarm, blocks });

/** Parses a server message; null for anything that is not a typed object. */
export function parse(text) {
  try {
    const m = JSON.parse(text);
    return m && typeof m === 'object' && !Array.isArray(m) && typeof m.type === 'string' ? m : null;
  } catch {
    return null;
  }
}
