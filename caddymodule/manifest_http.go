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
			if me.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
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

// manifestTarget validates the url parameter and returns the resource's
// normal form (parseTarget), after checking it against the prefix and the
// configured paths.
func (h *Handler) manifestTarget(r *http.Request) (string, *manifestError) {
	target, u, merr := parseTarget(r.URL.Query().Get("url"), r.Host)
	if merr != nil {
		return "", merr
	}
	if strings.HasPrefix(u.Path, h.Prefix) {
		return "", refuse(http.StatusBadRequest, "the module's own routes are not shareable")
	}
	check := r.Clone(r.Context())
	check.URL = u
	check.Header = http.Header{}
	if !h.pathMayShare(check) {
		return "", refuse(http.StatusForbidden, "not shareable: %s is not in the configured paths", u.Path)
	}
	return target, nil
}

// parseTarget checks the url parameter of the manifest route — a clean
// absolute path with optional query, or an absolute http(s) URL whose host
// is host — and returns it in normal form with its parsed URL. The normal
// form is what manifests are built and cached under, so that spellings of
// one resource share one build: percent-encoded unreserved characters
// (letters, digits, - . _ ~) are decoded and other escapes get upper-case
// hex (RFC 3986 §6.2.2); reserved characters keep their encoding (%2F is
// not a slash to every origin). The query is part of the resource: an
// origin may serve other bytes for another query, so ?v=1 and ?v=2 are two
// resources, each built once.
func parseTarget(raw, host string) (string, *url.URL, *manifestError) {
	switch {
	case raw == "":
		return "", nil, refuse(http.StatusBadRequest, "missing url parameter, e.g. ?url=/files/big.bin")
	case len(raw) > maxURLLength:
		return "", nil, refuse(http.StatusBadRequest, "url is longer than %d bytes", maxURLLength)
	case strings.ContainsAny(raw, "\\\x00\r\n\t"):
		return "", nil, refuse(http.StatusBadRequest, "url contains a backslash or control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, refuse(http.StatusBadRequest, "url does not parse: %v", err)
	}
	if u.Scheme != "" || u.Host != "" || u.User != nil {
		if (u.Scheme != "http" && u.Scheme != "https") || !strings.EqualFold(u.Host, host) {
			return "", nil, refuse(http.StatusBadRequest, "url %q is not on this site (%s); only same-origin resources are shared", raw, host)
		}
	}
	if u.Fragment != "" || u.Opaque != "" {
		return "", nil, refuse(http.StatusBadRequest, "url must be a plain path, without fragment")
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || !strings.HasPrefix(u.EscapedPath(), "/") {
		return "", nil, refuse(http.StatusBadRequest, "url must be an absolute path starting with /")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return "", nil, refuse(http.StatusBadRequest, "url must not contain . or .. segments")
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/" // a directory's URL keeps its slash
	}
	if clean != p {
		return "", nil, refuse(http.StatusBadRequest, "url must be a clean path")
	}
	target := normalizeEscapes(u.EscapedPath())
	if u.RawQuery != "" {
		target += "?" + normalizeEscapes(u.RawQuery)
	}
	norm, err := url.Parse(target)
	if err != nil || norm.Path != p {
		// Cannot happen for a URL that parsed: normalising keeps meaning.
		return "", nil, refuse(http.StatusBadRequest, "url does not normalise")
	}
	return target, norm, nil
}

// normalizeEscapes decodes %XX escapes of unreserved characters and
// upper-cases the hex of the others, leaving everything else as it is.
func normalizeEscapes(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			c := unhex(s[i+1])<<4 | unhex(s[i+2])
			if isUnreserved(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(s[i+1 : i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// isUnreserved reports RFC 3986's unreserved characters.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
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
