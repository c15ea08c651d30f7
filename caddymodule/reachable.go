package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// checkReachable refuses a handler placed behind a route matcher that its
// own routes do not pass, as in `handle /downloads/* { p2pxhr }`: there
// {prefix}client.js and the manifest route would answer 404 and no page
// outside the matcher would get the client, while the config looked fine.
//
// It walks the subroutes the handler is being provisioned in (the context's
// module lineage) and asks each enclosing route's matchers about a GET of
// {prefix}client.js. Host matchers (the site's address) are taken as
// passing. Routes are provisioned one by one, so the enclosing route of a
// subroute is the first whose handlers are still raw JSON. A matcher that
// cannot be judged (an error, a panic) is given the benefit of the doubt.
func checkReachable(ctx caddy.Context, prefix string) error {
	mods := ctx.Modules()
	for i := len(mods) - 2; i >= 0; i-- {
		sr, ok := mods[i].(*caddyhttp.Subroute)
		if !ok {
			continue
		}
		route := enclosingRoute(sr.Routes)
		if route == nil || len(route.MatcherSets) == 0 {
			continue
		}
		if matchesOwnRoute(route.MatcherSets, prefix) {
			continue
		}
		return fmt.Errorf("p2pxhr is inside a route matching %s, which %sclient.js does not pass, "+
			"so the module's own routes would answer 404 and pages outside it would get no client; "+
			"put p2pxhr at the top of the site block and limit sharing with paths "+
			"(p2pxhr { paths /downloads/* }, or p2pxhr /downloads/*)", describeMatchers(route.MatcherSets), prefix)
	}
	return nil
}

// enclosingRoute is the route of rs being provisioned now, or nil.
func enclosingRoute(rs caddyhttp.RouteList) *caddyhttp.Route {
	for i := range rs {
		if rs[i].HandlersRaw != nil {
			return &rs[i]
		}
	}
	return nil
}

// matchesOwnRoute reports whether a GET of {prefix}client.js passes sets.
func matchesOwnRoute(sets caddyhttp.MatcherSets, prefix string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = true // a matcher that needs a real request: not ours to judge
		}
	}()
	r := httptest.NewRequest(http.MethodGet, prefix+"client.js", nil)
	repl := caddy.NewReplacer()
	c := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	c = context.WithValue(c, caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(c)
	for _, set := range sets {
		if setMatches(set, r) {
			return true
		}
	}
	return false
}

func setMatches(set caddyhttp.MatcherSet, r *http.Request) bool {
	for _, m := range set {
		switch m.(type) {
		case caddyhttp.MatchHost, *caddyhttp.MatchHost:
			continue // the site's address: the request would carry it
		}
		var ok bool
		var err error
		switch m := m.(type) {
		case caddyhttp.RequestMatcherWithError:
			ok, err = m.MatchWithError(r)
		case caddyhttp.RequestMatcher:
			ok = m.Match(r)
		default:
			continue
		}
		if err == nil && !ok {
			return false
		}
	}
	return true
}

// describeMatchers names matchers for an error message: path patterns as
// written, other matchers by kind.
func describeMatchers(sets caddyhttp.MatcherSets) string {
	var parts []string
	for _, set := range sets {
		for _, m := range set {
			switch m := m.(type) {
			case caddyhttp.MatchPath:
				parts = append(parts, "path "+strings.Join(m, " "))
			case *caddyhttp.MatchPath:
				parts = append(parts, "path "+strings.Join(*m, " "))
			case caddyhttp.MatchHost, *caddyhttp.MatchHost:
			default:
				parts = append(parts, fmt.Sprintf("a %T matcher", m))
			}
		}
	}
	if len(parts) == 0 {
		return "its matchers"
	}
	return strings.Join(parts, " and ")
}
