package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.uber.org/zap"
)

// maxURLLength bounds the url parameter of the manifest route.
const maxURLLength = 2048

// serveManifest answers GET {prefix}manifest?url=/path with the resource's
// manifest, or a JSON error with the reason.
func (h *Handler) serveManifest(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, "the manifest route answers GET only")
	}
	target, merr := h.manifestTarget(r)
	if merr != nil {
		return writeJSONError(w, merr.status, merr.reason)
	}
	entry, err := h.manifests.Get(r, target)
	if err != nil {
		var me *manifestError
		switch {
		case errors.As(err, &me):
			return writeJSONError(w, me.status, me.reason)
		case r.Context().Err() != nil:
			return nil // the client went away: nobody to answer
		}
		h.logger.Error("manifest build failed", zap.Error(err))
		return writeJSONError(w, http.StatusBadGateway, "the origin failed: "+err.Error())
	}
	etag := `"` + entry.manifest.ID + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(entry.body)
	return err
}

// manifestTarget validates the url parameter: a path on this site, given
// as an absolute path or as an absolute URL whose host is this site.
func (h *Handler) manifestTarget(r *http.Request) (string, *manifestError) {
	raw := r.URL.Query().Get("url")
	switch {
	case raw == "":
		return "", refuse(http.StatusBadRequest, "missing url parameter, e.g. ?url=/files/big.bin")
	case len(raw) > maxURLLength:
		return "", refuse(http.StatusBadRequest, "url is longer than %d bytes", maxURLLength)
	case strings.ContainsAny(raw, "\\\x00\r\n\t"):
		return "", refuse(http.StatusBadRequest, "url contains a backslash or control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", refuse(http.StatusBadRequest, "url does not parse: %v", err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil {
		if (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, r.Host) {
			return "", refuse(http.StatusBadRequest, "url %q is not on this site (%s); only same-origin resources are shared", raw, r.Host)
		}
	}
	if u.Fragment != "" || u.Opaque != "" {
		return "", refuse(http.StatusBadRequest, "url must be a plain path, without fragment")
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") {
		return "", refuse(http.StatusBadRequest, "url must be an absolute path starting with /")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return "", refuse(http.StatusBadRequest, "url must not contain . or .. segments")
		}
	}
	if path.Clean(p) != p && !strings.HasSuffix(p, "/") {
		return "", refuse(http.StatusBadRequest, "url must be a clean path")
	}
	if strings.HasPrefix(p, h.Prefix) {
		return "", refuse(http.StatusBadRequest, "the module's own routes are not shareable")
	}
	check := r.Clone(r.Context())
	check.URL = &url.URL{Path: p, RawQuery: u.RawQuery}
	check.Header = http.Header{}
	if !h.pathMayShare(check) {
		return "", refuse(http.StatusForbidden, "not shareable: %s is not in the configured paths", p)
	}
	target := u.EscapedPath()
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, nil
}

// writeJSONError answers with {"error": reason, "status": status}.
func writeJSONError(w http.ResponseWriter, status int, reason string) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{reason, status})
}
