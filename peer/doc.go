// Package peer is the Go peer of P2PXHR: it downloads a resource from other
// peers over WebRTC DataChannels (pion) and from the origin by HTTP range
// requests at the same time, verifies every block against the manifest
// before it is written, counted or served, and seeds verified blocks to
// others.
//
// It owns the peer side of the wire protocol (package protocol holds the
// message formats), the block store, the block scheduler, the HTTP range
// fetcher and the in-memory signalling hub used by tests. It imports
// protocol, pion and the standard library, and never imports Caddy.
package peer
