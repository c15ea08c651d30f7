package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Service worker mode (`service_worker on`): the module serves
// {prefix}sw.js, a service worker the injected client registers, which
// answers the page's requests for shared files (images, <video>, fetch,
// downloads) from verified blocks: the browser's persistent cache, peers
// (through a page of the site, since a worker has no RTCPeerConnection)
// and HTTP ranges. The worker is the one place where "no page code" is
// complete: it sees every request before the network does.

// ServiceWorkerConfig turns service worker mode on (present) or off
// (absent): with it the injected client registers {prefix}sw.js; without
// it the client unregisters that worker on the next page load and the
// route serves a worker that removes itself.
type ServiceWorkerConfig struct {
	// Scope the client registers the worker for. Default: "/", the whole
	// site ({prefix}sw.js is served with Service-Worker-Allowed: /).
	Scope string `json:"scope,omitempty"`
}

// scope is the registration scope, "/" unless configured.
func (c *ServiceWorkerConfig) scope() string {
	if c == nil || c.Scope == "" {
		return "/"
	}
	return c.Scope
}

// parseServiceWorker reads `service_worker on [scope]` or `service_worker off`.
func parseServiceWorker(d *caddyfile.Dispenser, h *Handler) error {
	if !d.NextArg() {
		return d.Errf("service_worker takes on (optionally followed by a scope such as /) or off")
	}
	switch d.Val() {
	case "off":
		h.ServiceWorker = nil
		return nil
	case "on":
		h.ServiceWorker = &ServiceWorkerConfig{}
		if d.NextArg() {
			if err := checkScope(d.Val()); err != nil {
				return d.Errf("service_worker: %v", err)
			}
			if d.Val() != "/" {
				h.ServiceWorker.Scope = d.Val()
			}
		}
		if d.NextArg() {
			return d.Errf("service_worker takes on [scope] or off, got an extra %q", d.Val())
		}
		return nil
	}
	return d.Errf("service_worker: %q is neither on nor off", d.Val())
}

// checkScope accepts a registration scope: an absolute path, no query,
// fragment or wildcard.
func checkScope(s string) error {
	if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?#* \\") {
		return fmt.Errorf("scope %q must be a path such as / or /videos/ (no query, fragment or wildcard)", s)
	}
	return nil
}

// validateServiceWorker checks the service worker part of a JSON config.
func (h *Handler) validateServiceWorker() error {
	if h.ServiceWorker == nil || h.ServiceWorker.Scope == "" {
		return nil
	}
	if err := checkScope(h.ServiceWorker.Scope); err != nil {
		return fmt.Errorf("p2pxhr: service_worker: %w", err)
	}
	return nil
}

// swAttr is the client tag's data-sw: the scope to register the worker
// for, or "off" (unregister it).
func (h *Handler) swAttr() string {
	if h.ServiceWorker == nil {
		return "off"
	}
	return h.ServiceWorker.scope()
}

// workerScript is {prefix}sw.js for this config: the worker bundle after
// one line of configuration (the paths it may share, the routes' prefix),
// so a changed config is a changed script, which browsers install anew;
// or, when the mode is off, a worker that unregisters itself.
type workerScript struct {
	body []byte
	etag string
}

// swSettings is what the worker reads from self.__p2pxhrSW.
type swSettings struct {
	Prefix string   `json:"prefix"`
	Paths  []string `json:"paths"`
	// Navigate: top-level navigations to matching paths (downloads, a
	// video opened by itself) go through the worker too. Only with paths:
	// otherwise every page load would first ask for a manifest.
	Navigate bool `json:"navigate"`
	// BlockSize lets the worker fetch the first block of a media range
	// while it asks for the manifest (verified once the manifest is in).
	BlockSize int `json:"blockSize"`
}

// newWorkerScript builds {prefix}sw.js from the client's worker bundle.
func (h *Handler) newWorkerScript() (*workerScript, error) {
	var body []byte
	if h.ServiceWorker != nil {
		paths := h.Paths
		if paths == nil {
			paths = []string{}
		}
		cfg, err := json.Marshal(swSettings{Prefix: h.Prefix, Paths: paths, Navigate: len(h.Paths) > 0, BlockSize: h.BlockSize})
		if err != nil {
			return nil, err
		}
		// One line, so the bundle's source map holds with one empty line
		// before its mappings (clientjs.go).
		body = append(append([]byte("self.__p2pxhrSW="), cfg...), ";\n"...)
		body = append(body, h.client.worker...)
	} else {
		own, err := json.Marshal(h.Prefix + "sw.js")
		if err != nil {
			return nil, err
		}
		body = []byte(fmt.Sprintf(killSwitchWorker, own))
	}
	sum := sha256.Sum256(body)
	return &workerScript{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}, nil
}

// killSwitchWorker is {prefix}sw.js with the mode off: registered as a
// site's worker, it replaces the P2PXHR worker at the browser's next
// update check and unregisters; imported into a site's own worker
// (importScripts) it does nothing, so it never removes the site's worker.
const killSwitchWorker = `// P2PXHR: service_worker is off on this site; this worker removes itself.
if (self.location.pathname === %s) {
  self.addEventListener('install', function () { self.skipWaiting(); });
  self.addEventListener('activate', function (e) { e.waitUntil(self.registration.unregister()); });
}
`

// serveWorker answers GET {prefix}sw.js. Service-Worker-Allowed: / lets a
// script under the prefix control the whole site; no-cache makes the
// browser's update checks see a new config at once.
func (h *Handler) serveWorker(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, "sw.js answers GET only")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/javascript; charset=utf-8")
	hdr.Set("Service-Worker-Allowed", "/")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", h.worker.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.worker.body))
	return nil
}
