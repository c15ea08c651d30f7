// The browser's own XMLHttpRequest and fetch, taken once when the client
// loads, before page code can replace them. A page that sets
// window.XMLHttpRequest = peer5.Request (or window.fetch = peer5.fetch)
// must never make the client call itself, and the client's own traffic
// (manifests, ranges, reports) must not go through a page's wrappers.

/** The native XMLHttpRequest, which peer5.Request extends. */
export const NativeXHR = window.XMLHttpRequest;

const f = window.fetch;
/** The native fetch, callable unbound. */
export const nativeFetch = (input, init) => f.call(window, input, init);
