// Package realnet holds the tests of visitors on different networks:
// Caddy and each browser in a Linux network namespace of its own, routed
// through a router namespace (internal/netnstest), browsers with their
// default WebRTC privacy (host addresses hidden behind mDNS names) driven
// by internal/browsertest's Node driver. They need root, and skip
// without it.
package realnet
