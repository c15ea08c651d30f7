// TypeScript declarations of the P2PXHR browser client, served at
// {prefix}client.d.ts (client.mjs answers with X-TypeScript-Types naming
// it). Use them for the global (client.js) with
//   /// <reference path="./client.d.ts" />
// or for the module (client.mjs) with a path mapping or an ambient module
// declaration of its URL. See client/README.md.

/** Bytes a transfer got from each source; final after `load`. */
export interface P2PXHRTransferStats {
  bytesFromHttp: number;
  bytesFromPeers: number;
  /** Neighbours that delivered blocks. */
  peers: number;
}

/**
 * A progress, load or loadend event of peer5.Request: where the bytes came
 * from so far. The fields are optional in the type only, so that these
 * handlers still fit XMLHttpRequest's; peer5.Request's events always have
 * them.
 */
export interface P2PXHRProgressEvent extends ProgressEvent<EventTarget> {
  readonly bytesFromHttp?: number;
  readonly bytesFromPeers?: number;
  readonly peers?: number;
}

/** Page-wide totals: `peer5.stats()`. */
export interface P2PXHRPageStats {
  /** DataChannels open now. */
  peers: number;
  bytesFromHttp: number;
  bytesFromPeers: number;
  bytesUploaded: number;
  /** This browser's seeding from its persistent cache. */
  seeding: P2PXHRSeedingStats;
  /** What the service worker answered for this page (service worker mode). */
  serviceWorker: P2PXHRServiceWorkerStats;
}

/** `peer5.stats().serviceWorker`: this page's requests the worker answered. */
export interface P2PXHRServiceWorkerStats {
  /** Responses the worker answered from blocks (a video's ranges count one each). */
  requests: number;
  /** The bytes of their blocks, by where the blocks came from. */
  bytesFromHttp: number;
  bytesFromPeers: number;
  /** The persistent cache, or the worker's memory (a block read again). */
  bytesFromCache: number;
}

/** `peer5.stats().seeding`. */
export interface P2PXHRSeedingStats {
  /** This tab is the browser's seeding tab. */
  leader: boolean;
  /** Cached files it seeds now, and the neighbours it serves. */
  swarms: number;
  peers: number;
  bytesUploaded: number;
  /** Bytes the persistent cache holds. */
  cachedBytes: number;
  /** Why the seeding tab does not seed ("" when it does). */
  blocked: string;
  /** The site's upload policy. */
  policy: "always" | "consent" | "never";
  /** The visitor's recorded choice, null when none. */
  consent: boolean | null;
}

/** One URL's latest transfer: `peer5.stats(url)` (the last 64 URLs). */
export interface P2PXHRURLStats {
  state: "loading" | "ok" | "error" | "abort" | "delegated";
  bytesFromHttp: number;
  bytesFromPeers: number;
  peers: number;
  loaded: number;
  total: number;
  durationMs: number;
}

/** The client's options: data-* attributes on its tag, or peer5.config. */
export interface P2PXHRConfig {
  /** The module's routes; default: the folder client.js or client.mjs was served from, else /_p2pxhr/. */
  prefix: string;
  /** STUN/TURN servers for RTCPeerConnection. */
  iceServers: RTCIceServer[];
  /** DataChannels per file. Default 6. */
  maxPeers: number;
  /** Serve blocks to others and keep finished files to seed. Default true. */
  upload: boolean;
  /** false delegates every request to the native XHR and fetch. Default true. */
  p2p: boolean;
  /** A/B group: "http" downloads over HTTP only; "" or "p2p" use peers. */
  group: string;
  /** Auto mode's path patterns, space-separated; "" is off. */
  auto: string;
  /** Bytes of finished files kept to seed, newest first. Default 512 MiB. */
  maxSeedBytes: number;
  /** Bytes of the persistent cache (at most a quarter of the storage quota); 0 keeps nothing. Default 1 GiB. */
  cacheSize: number;
  /** Seed the cached files while the visitor is on the site. Default true. */
  seed: boolean;
  /** Neighbours served from the cache at once. Default 4. */
  seedPeers: number;
  /** Bytes uploaded from the cache per visit and per day. Defaults 256 MiB, 1 GiB. */
  seedPerVisit: number;
  seedPerDay: number;
  /** Seconds a tab may stay hidden and still seed. Default 600. */
  seedHidden: number;
  /** Seed on a cellular or data-saving connection. Default false. */
  seedCellular: boolean;
  /** A page's own fields on its config object are kept. */
  [field: string]: unknown;
}

type Handler<E> = ((this: XMLHttpRequest, ev: E) => any) | null;

/**
 * peer5.Request: an XMLHttpRequest (a subclass of the browser's own) whose
 * shareable GETs come partly from peers. Its progress events carry where
 * the bytes came from.
 */
export interface P2PXHRRequest extends XMLHttpRequest {
  /** Where the bytes came from; final after `load`. */
  readonly stats: P2PXHRTransferStats;
  onprogress: Handler<P2PXHRProgressEvent>;
  onload: Handler<P2PXHRProgressEvent>;
  onloadend: Handler<P2PXHRProgressEvent>;
  addEventListener(type: "progress" | "load" | "loadend", listener: (this: XMLHttpRequest, ev: P2PXHRProgressEvent) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener<K extends keyof XMLHttpRequestEventMap>(type: K, listener: (this: XMLHttpRequest, ev: XMLHttpRequestEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
}

/** The class: `new peer5.Request()`, with XMLHttpRequest's constants. */
export interface P2PXHRRequestConstructor {
  new (): P2PXHRRequest;
  readonly prototype: P2PXHRRequest;
  readonly UNSENT: 0;
  readonly OPENED: 1;
  readonly HEADERS_RECEIVED: 2;
  readonly LOADING: 3;
  readonly DONE: 4;
}

/** A Response from peer5.fetch, with where its bytes came from. */
export interface P2PXHRResponse extends Response {
  /** Present when the body came through the swarm. */
  readonly stats?: P2PXHRTransferStats;
}

/** window.peer5 and window.p2pxhr (and the exports of client.mjs). */
export interface P2PXHR {
  readonly version: string;
  /** Live: changes affect later requests. */
  config: P2PXHRConfig;
  Request: P2PXHRRequestConstructor;
  fetch(input: string | URL | Request, init?: RequestInit): Promise<P2PXHRResponse>;
  stats(): P2PXHRPageStats;
  stats(url: string | URL): P2PXHRURLStats | null;
  /** The visitor's recorded choice about uploading and keeping files. */
  consent(): boolean | null;
  /** Records it; false also deletes the cache and stops every upload. */
  consent(given: boolean): Promise<boolean>;
}

// The exports of client.mjs: the same client as window.p2pxhr.
export declare const version: P2PXHR["version"];
export declare const config: P2PXHRConfig;
export declare const Request: P2PXHRRequestConstructor;
export declare const fetch: P2PXHR["fetch"];
export declare const consent: P2PXHR["consent"];
export declare const stats: P2PXHR["stats"];
declare const client: P2PXHR;
export default client;

declare global {
  interface Window {
    /** The client, unless another script had window.peer5 (then only its free fields). */
    peer5: P2PXHR;
    /** The client, always. */
    p2pxhr: P2PXHR;
  }
  var peer5: P2PXHR;
  var p2pxhr: P2PXHR;
}
