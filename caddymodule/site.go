package caddymodule

import (
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// siteOf names the site a request was served for: its scheme and its Host
// exactly as the client sent it. Every cache key, build and swarm
// registration carries it, so that one handler serving several hosts (two
// site addresses, a wildcard, root /srv/{http.request.host}, a catch-all
// reverse_proxy) never gives one host's bytes or manifest to another.
//
// The Host is neither case-folded nor stripped of its port or a trailing
// dot: the handler chain may tell such spellings apart (a root built from
// {http.request.host} keeps the case and the dot), so they get entries of
// their own. That costs a rebuild, never a wrong byte.
func siteOf(r *http.Request) string {
	return requestScheme(r) + "://" + r.Host
}

// requestScheme is https on a TLS connection, or when a trusted proxy
// (Caddy's trusted_proxies) says with X-Forwarded-Proto that it terminated
// TLS in front of us; http otherwise.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool); trusted {
		proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
		if strings.EqualFold(strings.TrimSpace(proto), "https") {
			return "https"
		}
	}
	return "http"
}
