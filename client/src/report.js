// Download reports: one per shared download, when it ends, to
// POST {prefix}stats, so operators can compare A/B groups on finished
// downloads. A beacon survives the page being closed; fetch with keepalive
// is the fallback where sendBeacon is missing or its queue is full.
// Reporting never throws: a lost report must not break a download.

/**
 * Sends one report. body: {swarm, group, bytesFromHttp, bytesFromPeers,
 * bytesUploaded, durationMs, outcome}.
 * @returns {boolean} whether it was handed to the browser
 */
export function sendReport(prefix, body) {
  try {
    const url = prefix + 'stats';
    // A string goes as text/plain, a type sendBeacon accepts without CORS
    // preflight everywhere; the module reads the body as JSON whatever its type.
    const data = JSON.stringify(body);
    if (typeof navigator.sendBeacon === 'function' && navigator.sendBeacon(url, data)) return true;
    fetch(url, { method: 'POST', body: data, keepalive: true, credentials: 'same-origin' }).catch(() => {});
    return true;
  } catch {
    return false;
  }
}
