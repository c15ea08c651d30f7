// Package inject owns the streaming HTML rewriting that inserts the P2PXHR
// client tag (<script src="{prefix}client.js" ...>) into pages going out.
//
// It is a plain net/http piece: it imports only the standard library and
// golang.org/x/net/html, and must never import Caddy (the Caddy handler in
// caddymodule wires it in).
//
// # Use
//
//	in, err := inject.New(inject.Options{Src: "/_p2pxhr/client.js"})
//	...
//	in.PrepareRequest(r)     // narrow Accept-Encoding to what can be decoded
//	iw := in.Wrap(w, r)
//	err = next.ServeHTTP(iw, r)
//	cerr := iw.Close()       // always: writes what is held, ends the scan
//
// # Where the tag goes
//
// Before </head> (or before whatever implicitly ends the head: <body>, body
// text, a non-head element); before a <base href> in the head, so the src is
// not resolved against a foreign base URL. Pages without <head> get it after
// any leading head-only elements (meta, title, link, ...), else before the
// first body content; a UTF-8 BOM always stays first. The body is tokenized
// with golang.org/x/net/html, so "</head>" inside comments, scripts, styles,
// titles and textareas never matches, and tags split across writes are
// found.
//
// # Streaming
//
// Only the start of the page is held, and only until the insertion point is
// decided; everything after goes straight through. The hold is bounded by
// Options.HoldLimit (64 KiB by default): past it, and whenever the origin
// calls Flush, the tag is inserted at the last safe boundary already seen
// (right after <head ...> at worst; never inside raw text or a <template>)
// and the held bytes are sent. The injector never gives up on an HTML page.
//
// # Headers
//
// An injected response loses Accept-Ranges, gets a weak ETag (W/"..."), and
// its Content-Length is fixed when known before anything is sent (identity
// body with a declared length), dropped otherwise. A compressed upstream
// (gzip and deflate built in, more via Options.Decoders) is decoded and, when
// the request accepts that coding and an encoder for it exists (gzip and
// deflate built in, more via Options.Encoders), compressed again with the
// same coding, so a page compressed before the injector stays compressed
// with or without an outer encoder; otherwise it goes out without
// Content-Encoding, for an outer encoder to compress. What was held goes out
// in one write with the tag, so an outer encoder that decides from the first
// write (Caddy's encode and its minimum_length) sees the whole start.
//
// # Left alone
//
// HEAD and other non-GET/POST requests, protocol upgrades, excluded paths,
// statuses 1xx/204/205/206/304, anything but text/html and
// application/xhtml+xml (nothing is sniffed), UTF-16/32 pages,
// Content-Disposition: attachment, Cache-Control: no-transform, unknown or
// stacked Content-Encodings, empty bodies, and pages whose head already has a
// script with the same src.
//
// # Content-Security-Policy
//
// When the response's Content-Security-Policy (or a <meta http-equiv> CSP in
// the head, or a report-only policy) allows scripts by nonce
// ('nonce-XYZ' in script-src-elem, script-src or default-src), the tag
// carries nonce="XYZ" and passes without any change to the policy.
//
// A policy based on hashes cannot allow the tag by hash: CSP hashes match
// inline script text, and the tag is an external script. Add one of:
//
//   - the script's origin: 'self' when the prefix is on the same origin
//     (script-src 'self' 'sha256-...');
//   - or, with Options.Integrity set, the client bundle's SRI hash: CSP Level 3
//     browsers allow an external script whose integrity attribute matches a
//     listed hash (script-src 'sha384-<same value as Options.Integrity>');
//   - under 'strict-dynamic', only nonces and hashes count and 'self' is
//     ignored: use a nonce, or list the SRI hash as above.
//
// # Subresource Integrity
//
// With Options.Integrity set the tag carries integrity="..." and
// crossorigin="anonymous" (Options.CrossOrigin), so a tampered client.js is
// refused by the browser.
package inject
