package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/p2pxhr/p2pxhr/client"
)

// clientAsset is the browser client bundle, with a content hash that
// serves as its ETag and its cache-busting version.
type clientAsset struct {
	body    []byte
	version string
}

func loadClientAsset() (*clientAsset, error) {
	body, err := client.Files.ReadFile(client.BundleName)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return &clientAsset{body: body, version: hex.EncodeToString(sum[:8])}, nil
}

// serve answers GET {prefix}client.js. A request naming the current
// version (?v=...) may be cached for a year; others revalidate by ETag.
func (c *clientAsset) serve(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, "client.js answers GET only")
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("ETag", `"`+c.version+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Query().Get("v") == c.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(c.body))
	return nil
}
