package caddymodule

import (
	"context"
	"net/http"
	"strings"
)

// subrequestKey marks the module's own virtual requests (manifest builds)
// so that the handler passes them straight to the origin.
type subrequestKey struct{}

func isSubrequest(r *http.Request) bool {
	return r.Context().Value(subrequestKey{}) != nil
}

func withSubrequestMark(ctx context.Context) context.Context {
	return context.WithValue(ctx, subrequestKey{}, true)
}

// requestMayShare reports whether a request is one whose response could be
// shared between visitors: an anonymous GET matching the configured paths.
// Requests carrying credentials are private by definition.
func (h *Handler) requestMayShare(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	if r.Header.Get("Authorization") != "" || !onlyGroupCookie(r) {
		return false
	}
	return h.pathMayShare(r)
}

// pathMayShare applies the paths patterns; with none, every path may.
func (h *Handler) pathMayShare(r *http.Request) bool {
	if len(h.paths) == 0 {
		return true
	}
	ok, err := h.paths.MatchWithError(r)
	return ok && err == nil
}

// responseMayShare says why the origin's response headers forbid sharing,
// or "" when they allow it.
func responseMayShare(hdr http.Header) string {
	if len(hdr.Values("Set-Cookie")) > 0 {
		return "the response sets a cookie"
	}
	for _, v := range hdr.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			switch strings.ToLower(strings.TrimSpace(strings.SplitN(d, "=", 2)[0])) {
			case "private":
				return "the response is Cache-Control: private"
			case "no-store":
				return "the response is Cache-Control: no-store"
			}
		}
	}
	// A response that varies by a request header the module does not key
	// on (Accept-Language, Origin, Cookie, *...) could differ for the next
	// visitor. Accept-Encoding is the exception: only identity bodies are
	// shared (below), and the module asks for identity when it builds.
	for _, v := range hdr.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" && !strings.EqualFold(f, "Accept-Encoding") {
				return "the response varies by " + f + " (Vary)"
			}
		}
	}
	if ce := hdr.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return "the origin sent it with Content-Encoding " + ce
	}
	return ""
}
