// What a TypeScript page does with the client; compiled against
// ../../client.d.ts by e2e TestTypeScriptDeclarationsCompile.
/// <reference path="../../client.d.ts" />
import { fetch as p2pFetch, Request as P2PRequest, stats, config, version } from "/_p2pxhr/client.mjs";
import type { P2PXHRTransferStats, P2PXHRURLStats } from "/_p2pxhr/client.mjs";

const xhr = new window.peer5.Request();
xhr.open("GET", "/videos/big.mp4");
xhr.responseType = "blob";
xhr.onprogress = (e) => console.log(e.loaded, e.total, e.bytesFromHttp, e.bytesFromPeers, e.peers);
xhr.onload = () => {
  const s: P2PXHRTransferStats = xhr.stats;
  console.log(xhr.response as Blob, s.bytesFromPeers, xhr.status, xhr.readyState === xhr.DONE);
};
xhr.addEventListener("progress", (e) => console.log(e.bytesFromPeers));
xhr.send();

async function download(): Promise<void> {
  const res = await peer5.fetch("/videos/big.mp4", { signal: AbortSignal.timeout(60_000) });
  const blob: Blob = await res.blob();
  console.log(blob.size, res.stats?.bytesFromHttp);
  const page = window.p2pxhr.stats();
  console.log(page.peers, page.bytesUploaded);
  const one: P2PXHRURLStats | null = stats("/videos/big.mp4");
  if (one && one.state === "ok") console.log(one.durationMs);
  const r2 = await p2pFetch(new URL("/a.bin", location.href));
  console.log(r2.ok, version, config.maxPeers, config.iceServers.length);
  config.p2p = false;
  config.myOwnField = 1;
  const x = new P2PRequest();
  x.open("GET", "/a.bin");
}
void download;

// peer5.Request is an XMLHttpRequest: code written for one takes it.
const asXHR: XMLHttpRequest = new peer5.Request();
void asXHR;
