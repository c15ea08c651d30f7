// Package p2pxhr is the P2PXHR plugin for Caddy, what
// `xcaddy build --with github.com/p2pxhr/p2pxhr` imports: it registers the
// http.handlers.p2pxhr handler and its Caddyfile directive (package
// caddymodule) and, beside them as Caddy's own modules keep theirs, the
// `get` and `seed` commands, which take part in a site's swarms from a
// terminal or a server as Go peers.
//
// The demo site's generated files (p2pxhr_demo_files) and `bench` are not
// part of the plugin: they live in cmd/p2pxhr, the repository's own binary.
package p2pxhr

import (
	_ "github.com/p2pxhr/p2pxhr/caddymodule" // http.handlers.p2pxhr and the p2pxhr directive
)
