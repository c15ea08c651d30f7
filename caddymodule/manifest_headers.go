package caddymodule

import (
	"net/http"
	"slices"
	"strings"
)

// Bounds on the headers a manifest carries, so that an origin with huge
// headers cannot make every manifest huge.
const (
	maxSharedHeaderValue = 8 << 10
	maxSharedHeaders     = 32 << 10
)

// perResponseHeaders describe one response, not the resource: a shared
// copy is assembled later, so the client takes Date from the manifest
// response itself and leaves the others out.
var perResponseHeaders = map[string]bool{
	"date": true, "age": true,
	// Never readable by page scripts; a response that sets a cookie is not shared anyway.
	"set-cookie": true, "set-cookie2": true,
	// Hop-by-hop (RFC 9110 §7.6.1): about one connection, not the content.
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"te": true, "trailer": true, "upgrade": true, "proxy-authenticate": true,
}

// sharedResponseHeaders returns the origin's response headers as a page's
// XMLHttpRequest would read them (lowercase names, values of one name
// joined by ", "), for the manifest: what peer5.Request and peer5.fetch
// show for a response assembled from blocks.
func sharedResponseHeaders(h http.Header) map[string]string {
	skip := map[string]bool{}
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			skip[strings.ToLower(strings.TrimSpace(name))] = true
		}
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make(map[string]string, len(names))
	total := 0
	for _, name := range names {
		lower := strings.ToLower(name)
		value := strings.Join(h[name], ", ")
		if perResponseHeaders[lower] || skip[lower] || len(value) > maxSharedHeaderValue {
			continue
		}
		if prev, ok := out[lower]; ok { // the same name set in two spellings
			value = prev + ", " + value
		}
		if total += len(lower) + len(value); total > maxSharedHeaders {
			break
		}
		out[lower] = value
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
