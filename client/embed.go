// Package client holds the P2PXHR browser client and the pages served with
// it, embedded so the Caddy module serves them from the binary. It imports
// nothing in Go but embed.
package client

import "embed"

// Files holds the client bundle and the pages.
//
//go:embed client.js
var Files embed.FS

// BundleName is the file every page loads.
const BundleName = "client.js"
