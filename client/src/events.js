// Progress events as XHR fires them, carrying where the bytes came from.

/** A ProgressEvent with bytesFromHttp, bytesFromPeers and peers added. */
export function progressEvent(type, loaded, total, stats) {
  const e = new ProgressEvent(type, { lengthComputable: total > 0, loaded, total });
  e.bytesFromHttp = stats.bytesFromHttp;
  e.bytesFromPeers = stats.bytesFromPeers;
  e.peers = stats.peers;
  return e;
}

/** Stats of a request carried by a native XHR: every byte came by HTTP. */
export const delegatedStats = (loaded) => ({ bytesFromHttp: loaded || 0, bytesFromPeers: 0, peers: 0 });
