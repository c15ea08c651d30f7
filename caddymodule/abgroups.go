package caddymodule

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
)

// A/B groups: visitors in GroupP2P download with peers; visitors in
// GroupHTTP download over HTTP only but measure and report the same way,
// so the two can be compared.
const (
	GroupP2P  = "p2p"
	GroupHTTP = "http"

	// groupCookie keeps a visitor in one group across visits.
	groupCookie = "p2pxhr_group"
	// forceGroupParam and forceGroupHeader pick a group for testing.
	forceGroupParam  = "p2pxhr_group"
	forceGroupHeader = "P2PXHR-Group"
)

func validGroup(g string) bool { return g == GroupP2P || g == GroupHTTP }

// groupChoice is a request's group and whether the visitor must be told
// (a new or forced assignment).
type groupChoice struct {
	group string
	fresh bool
}

type groupKey struct{}

// assignGroup places a page request in a group: a forced group first, then
// the visitor's cookie, then a draw with the configured P2P percentage.
// Without `ab` every visitor is in the P2P group and no cookie is set.
func (h *Handler) assignGroup(r *http.Request) groupChoice {
	if h.AB == nil {
		return groupChoice{group: GroupP2P}
	}
	if g := r.URL.Query().Get(forceGroupParam); validGroup(g) {
		return groupChoice{g, true}
	}
	if g := r.Header.Get(forceGroupHeader); validGroup(g) {
		return groupChoice{g, true}
	}
	if c, err := r.Cookie(groupCookie); err == nil && validGroup(c.Value) {
		return groupChoice{group: c.Value}
	}
	if rand.Float64()*100 < *h.AB {
		return groupChoice{GroupP2P, true}
	}
	return groupChoice{GroupHTTP, true}
}

func withGroup(r *http.Request, g groupChoice) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), groupKey{}, g))
}

func groupOf(r *http.Request) groupChoice {
	g, _ := r.Context().Value(groupKey{}).(groupChoice)
	return g
}

// markGroup adds the group cookie to a page that carries the client. The
// page varies by the cookie once groups are drawn.
func (h *Handler) markGroup(hdr http.Header, r *http.Request) {
	h.metrics.injections.Inc()
	if h.AB == nil {
		return
	}
	hdr.Add("Vary", "Cookie")
	if g := groupOf(r); g.fresh {
		c := &http.Cookie{Name: groupCookie, Value: g.group, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode}
		hdr.Add("Set-Cookie", c.String())
	}
}

// onlyGroupCookie reports whether a request's cookies are just the A/B
// group cookie: that says nothing about who the visitor is, so it does not
// make a request private. It reads the raw Cookie headers, not
// r.Cookies(): net/http drops cookies it cannot parse (quotes, backslashes,
// non-ASCII, names like user[id]), and an application may still read them
// to tell visitors apart. Anything but p2pxhr_group=p2p|http, spaces and
// semicolons counts as another cookie.
func onlyGroupCookie(r *http.Request) bool {
	for _, line := range r.Header.Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			part = strings.Trim(part, " \t")
			if part == "" {
				continue
			}
			name, value, ok := strings.Cut(part, "=")
			if !ok || name != groupCookie || !validGroup(value) {
				return false
			}
		}
	}
	return true
}
