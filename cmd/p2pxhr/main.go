// Command p2pxhr is Caddy with the standard modules and the p2pxhr plugin,
// plus the P2PXHR subcommands.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/p2pxhr/p2pxhr/caddymodule"
)

func main() {
	caddycmd.Main()
}
