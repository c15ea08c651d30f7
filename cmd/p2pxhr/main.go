// Command p2pxhr is Caddy with the standard modules and the p2pxhr plugin
// (its handler and the get and seed commands), plus what only this binary
// needs: the demo site's generated files and the bench command.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/p2pxhr/p2pxhr"
	_ "github.com/p2pxhr/p2pxhr/cmd/p2pxhr/demofiles"
)

func main() {
	caddycmd.Main()
}
