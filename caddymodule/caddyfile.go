package caddymodule

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/dustin/go-humanize"

	"github.com/p2pxhr/p2pxhr/protocol"
)

func init() {
	httpcaddyfile.RegisterDirective("p2pxhr", parseDirective)
	// After encode, so compression wraps us; before templates, reverse_proxy
	// and file_server, so we wrap the origin's responses.
	httpcaddyfile.RegisterDirectiveOrder("p2pxhr", httpcaddyfile.Before, "templates")
}

// subdirectives lists what the p2pxhr block accepts, for error messages.
const subdirectives = "prefix, paths, min_size, max_size, block_size, cache_size, http_rate_limit, offload, inject, inject_exclude, allowed_origins, max_neighbours, max_connections_per_address, ab, dashboard, auto, ice_server, stun, turn, upload, service_worker, backplane"

// parseDirective reads a p2pxhr directive. A path matcher on its line
// (`p2pxhr /downloads/*`, or `@name` defined by path patterns alone) says
// what may be shared: it becomes `paths`, and the handler's route stays
// unmatched, because its own routes under the prefix and the pages that
// get the client tag lie outside that matcher. Any other matcher is an
// error saying what to write.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	if !h.Next() {
		return nil, h.ArgErr()
	}
	token := ""
	if h.NextArg() {
		token = h.Val() // for messages: the matcher as written
	}
	h.Reset()
	h.Next()
	matcher, err := h.ExtractMatcherSet() // drops a matcher token and rewinds
	if err != nil {
		return nil, err
	}
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	if matcher != nil {
		h.Reset()
		h.Next() // errors point at the directive's line
		paths, err := matcherPaths(matcher)
		if err != nil {
			return nil, h.Errf("p2pxhr %s: %v; the module's routes under its prefix and the pages that load the client must stay reachable, so limit sharing inside the block instead: p2pxhr { paths /downloads/* }", token, err)
		}
		if len(handler.Paths) > 0 {
			return nil, h.Errf("p2pxhr %s also has paths in its block; give the patterns once, on the line or as paths", token)
		}
		handler.Paths = paths
	}
	return h.NewRoute(nil, handler), nil
}

// matcherPaths returns the patterns of a matcher set made of a path
// matcher alone.
func matcherPaths(set map[string]json.RawMessage) ([]string, error) {
	raw, ok := set["path"]
	if !ok || len(set) != 1 {
		names := make([]string, 0, len(set))
		for name := range set {
			names = append(names, name)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("only a path matcher can limit what is shared, and this one matches by %s", strings.Join(names, ", "))
	}
	var paths []string
	if err := json.Unmarshal(raw, &paths); err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("path matcher %s: want path patterns", raw)
	}
	return paths, nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	p2pxhr {
//	    prefix           <path>
//	    paths            <patterns...>
//	    min_size         <size>
//	    max_size         <size>
//	    block_size       <size>
//	    cache_size       <size>|off
//	    http_rate_limit  <size>[/s]
//	    offload          off|always|<size>/s|in_flight <n>
//	    inject           on|off
//	    inject_exclude   <paths...>
//	    allowed_origins  <origins...>
//	    max_neighbours   <n>
//	    max_connections_per_address <n>|off
//	    ab               <percent>
//	    dashboard        [on|off]
//	    auto             <patterns...>
//	    ice_server       <stun:|turn:url> [<username> <credential>]
//	    stun             off|<listen address>
//	    turn {
//	        listen        <address>
//	        realm         <realm>
//	        relay_address <ip>
//	        quota         <size per visitor per day>
//	        total         <size>/s
//	    }
//	    upload           always|consent|never
//	    service_worker   on [<scope>]|off
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("p2pxhr takes no arguments on its line, got %q; put options in a block", d.Val())
	}
	for d.NextBlock(0) {
		name := d.Val()
		switch name {
		case "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Prefix = d.Val()
		case "paths":
			h.Paths = append(h.Paths, d.RemainingArgs()...)
			if len(h.Paths) == 0 {
				return d.Errf("paths needs at least one pattern, such as *.mp4 or /downloads/*")
			}
			continue
		case "min_size":
			v, err := sizeArg(d, name)
			if err != nil {
				return err
			}
			h.MinSize = &v
		case "max_size":
			v, err := sizeArg(d, name)
			if err != nil {
				return err
			}
			h.MaxSize = v
		case "block_size":
			v, err := sizeArg(d, name)
			if err != nil {
				return err
			}
			if v < protocol.MinBlockSize || v > protocol.MaxBlockSize {
				return d.Errf("block_size: %q is outside 16KiB..4MiB", d.Val())
			}
			h.BlockSize = int(v)
		case "cache_size":
			if !d.NextArg() {
				return d.Errf("cache_size needs a size such as 256MiB, or off")
			}
			if d.Val() == "off" {
				h.CacheSize = -1
				break
			}
			v, err := parseSize(d, name)
			if err != nil {
				return err
			}
			h.CacheSize = v
		case "http_rate_limit":
			v, err := sizeArg(d, name)
			if err != nil {
				return err
			}
			h.HTTPRateLimit = v
		case "offload":
			if err := parseOffload(d, h); err != nil {
				return err
			}
		case "inject":
			if !d.NextArg() || (d.Val() != "on" && d.Val() != "off") {
				return d.Errf("inject takes on or off")
			}
			on := d.Val() == "on"
			h.Inject = &on
		case "inject_exclude":
			h.InjectExclude = append(h.InjectExclude, d.RemainingArgs()...)
			if len(h.InjectExclude) == 0 {
				return d.Errf("inject_exclude needs at least one path pattern, such as /admin/*")
			}
			continue
		case "allowed_origins":
			h.AllowedOrigins = append(h.AllowedOrigins, d.RemainingArgs()...)
			if len(h.AllowedOrigins) == 0 {
				return d.Errf("allowed_origins needs at least one origin, such as https://www.example.com")
			}
			continue
		case "max_neighbours":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 || n > maxNeighboursLimit {
				return d.Errf("max_neighbours: %q is not a whole number from 1 to %d", d.Val(), maxNeighboursLimit)
			}
			h.MaxNeighbours = n
		case "max_connections_per_address":
			if !d.NextArg() {
				return d.Errf("max_connections_per_address needs a positive whole number or off, such as 50")
			}
			if d.Val() == "off" {
				h.MaxConnectionsPerAddress = -1
				break
			}
			n, err := strconv.Atoi(d.Val())
			if err != nil || n < 1 {
				return d.Errf("max_connections_per_address: %q is not a positive whole number or off", d.Val())
			}
			h.MaxConnectionsPerAddress = n
		case "ab":
			if !d.NextArg() {
				return d.Errf("ab needs the percentage of visitors in the P2P group, such as 50")
			}
			pct, err := strconv.ParseFloat(strings.TrimSuffix(d.Val(), "%"), 64)
			if err != nil || pct < 0 || pct > 100 {
				return d.Errf("ab: %q is not a percentage between 0 and 100", d.Val())
			}
			h.AB = &pct
		case "backplane":
			if err := parseBackplane(d, h); err != nil {
				return err
			}
			continue
		case "dashboard":
			h.Dashboard = true
			if d.NextArg() {
				if d.Val() != "on" && d.Val() != "off" {
					return d.Errf("dashboard takes on or off, or nothing (on), not %q", d.Val())
				}
				h.Dashboard = d.Val() == "on"
			}
		case "auto":
			h.Auto = append(h.Auto, d.RemainingArgs()...)
			if len(h.Auto) == 0 {
				return d.Errf("auto needs at least one path pattern, such as *.mp4 or /downloads/*")
			}
			continue
		case "ice_server":
			args := d.RemainingArgs()
			if len(args) != 1 && len(args) != 3 {
				return d.Errf("ice_server takes a URL, or a URL, a username and a credential")
			}
			srv := ICEServer{URLs: args[:1]}
			if len(args) == 3 {
				srv.Username, srv.Credential = args[1], args[2]
			}
			h.ICEServers = append(h.ICEServers, srv)
			continue
		case "stun":
			if !d.NextArg() {
				return d.Errf("stun takes off or a UDP listen address such as :3478")
			}
			h.STUN = d.Val()
		case "turn":
			if err := parseTURN(d, h); err != nil {
				return err
			}
			continue
		case "upload":
			if err := parseUpload(d, h); err != nil {
				return err
			}
		case "service_worker":
			if err := parseServiceWorker(d, h); err != nil {
				return err
			}
		default:
			return d.Errf("unknown p2pxhr subdirective %q; expected one of: %s", name, subdirectives)
		}
		if d.NextArg() {
			return d.Errf("%s takes one value, got an extra %q", name, d.Val())
		}
	}
	return nil
}

// sizeArg reads one byte size such as 256KiB, 4GiB or 2MB/s.
func sizeArg(d *caddyfile.Dispenser, name string) (int64, error) {
	if !d.NextArg() {
		return 0, d.Errf("%s needs a size such as 256KiB", name)
	}
	return parseSize(d, name)
}

// parseSize parses the current token as a byte size.
func parseSize(d *caddyfile.Dispenser, name string) (int64, error) {
	raw := strings.TrimSuffix(d.Val(), "/s")
	n, err := humanize.ParseBytes(raw)
	if err != nil || n > 1<<50 {
		return 0, d.Errf("%s: %q is not a size; expected a byte size such as 256KiB, 4GiB or 2MB", name, d.Val())
	}
	return int64(n), nil
}
