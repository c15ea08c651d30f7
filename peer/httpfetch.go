package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// ErrOriginChanged means the origin no longer serves the bytes of the
// manifest being downloaded: If-Range answered 200, the range is gone, or
// the bytes fail verification. The download restarts on a new manifest.
var ErrOriginChanged = errors.New("peer: the origin changed the resource")

// maxManifestBytes bounds a manifest response: 64 hex digits and some JSON
// per block, for the largest manifest allowed.
const maxManifestBytes = 80*protocol.MaxBlocks + 64<<10

// ManifestURL returns where the manifest of resource is served: the
// module's prefix at the resource's origin, with the path as the url
// parameter.
func ManifestURL(resource, prefix string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("peer: %q is not an absolute URL", resource)
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	m := url.URL{Scheme: u.Scheme, Host: u.Host, Path: prefix + "manifest",
		RawQuery: "url=" + url.QueryEscape(path)}
	return m.String(), nil
}

// FetchManifest gets and validates the manifest of resource.
func FetchManifest(ctx context.Context, hc *http.Client, resource, prefix string) (*protocol.Manifest, error) {
	mu, err := ManifestURL(resource, prefix)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
	if err != nil {
		return nil, err
	}
	// The manifest must describe what the origin serves now, not a cached
	// copy: a restart after a change depends on it.
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peer: manifest: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, manifestError(mu, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("peer: manifest: %w", err)
	}
	if len(body) > maxManifestBytes {
		return nil, fmt.Errorf("peer: manifest larger than %d bytes", maxManifestBytes)
	}
	var m protocol.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("peer: manifest: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ManifestError is a manifest request the server answered with an error
// status: the resource is not shareable (private, too small, not found...)
// or the module is not at that prefix. Reason is the module's JSON
// "error" text when there is one.
type ManifestError struct {
	URL    string
	Status int
	Reason string
}

func (e *ManifestError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("peer: manifest %s: HTTP %d", e.URL, e.Status)
	}
	return fmt.Sprintf("peer: manifest %s: HTTP %d: %s", e.URL, e.Status, e.Reason)
}

// maxErrorBody bounds the error body read for its reason.
const maxErrorBody = 4 << 10

func manifestError(mu string, resp *http.Response) *ManifestError {
	e := &ManifestError{URL: mu, Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &j) == nil {
		// The reason is shown to users: keep it one bounded line.
		e.Reason = strings.Join(strings.Fields(j.Error), " ")
		if len(e.Reason) > 256 {
			e.Reason = e.Reason[:256]
		}
	}
	return e
}

// fetchBlock reads block i of m from resource with one range request. The
// If-Range validator makes a changed origin answer 200 instead of mixing a
// range of the new version into the old.
func fetchBlock(ctx context.Context, hc *http.Client, resource string, m *protocol.Manifest, i int, buf []byte) ([]byte, error) {
	off, n := m.BlockRange(i)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resource, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(n)-1))
	validator := m.ETag
	if validator == "" || strings.HasPrefix(validator, "W/") {
		validator = m.LastModified // If-Range needs a strong validator
	}
	if validator != "" {
		req.Header.Set("If-Range", validator)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body := io.Reader(resp.Body)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if err := checkContentRange(resp.Header.Get("Content-Range"), off, n, m.Size); err != nil {
			return nil, err
		}
	case http.StatusOK:
		if validator != "" || resp.ContentLength >= 0 && resp.ContentLength != m.Size {
			return nil, fmt.Errorf("block %d: HTTP 200 to a range request: %w", i, ErrOriginChanged)
		}
		// No validator and ranges ignored: skip to the block. Costly, but
		// the bytes are still verified below.
		if _, err := io.CopyN(io.Discard, body, off); err != nil {
			return nil, err
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, fmt.Errorf("block %d: HTTP 416: %w", i, ErrOriginChanged)
	default:
		return nil, fmt.Errorf("peer: block %d: HTTP %d", i, resp.StatusCode)
	}
	if _, err := io.ReadFull(body, buf[:n]); err != nil {
		return nil, fmt.Errorf("peer: block %d: %w", i, err)
	}
	return buf[:n], nil
}

func checkContentRange(h string, off int64, n int, size int64) error {
	want := fmt.Sprintf("bytes %d-%d/", off, off+int64(n)-1)
	if !strings.HasPrefix(h, want) {
		return fmt.Errorf("peer: Content-Range %q, want %q…", h, want)
	}
	if total := strings.TrimPrefix(h, want); total != "*" && total != strconv.FormatInt(size, 10) {
		return fmt.Errorf("resource is %s bytes, manifest says %d: %w", total, size, ErrOriginChanged)
	}
	return nil
}
