// Package caddymodule is the Caddy side of P2PXHR: the http.handlers.p2pxhr
// handler and its Caddyfile directive. It owns the routes under the prefix,
// manifest building and caching, range serving, rate limiting and the
// wiring of the coordinator and the HTML injector. Besides the module root
// (the plugin's commands) and cmd/, it is the only package that imports Caddy.
package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/inject"
	"github.com/p2pxhr/p2pxhr/protocol"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Defaults of the handler's configuration.
const (
	DefaultPrefix    = "/_p2pxhr/"
	DefaultMinSize   = 256 << 10
	DefaultMaxSize   = 4 << 30
	DefaultCacheSize = 256 << 20

	defaultConnectionsPerAddress = coordinator.DefaultMaxConnectionsPerAddress

	// maxNeighboursLimit bounds max_neighbours: more DataChannels per file
	// than browsers handle well.
	maxNeighboursLimit = 64
)

// Handler makes the site's large public files shareable between its
// visitors: it serves manifests, the browser client and the coordinator
// under Prefix, and passes every other request to the next handler.
type Handler struct {
	// Prefix of the module's own routes. Default: /_p2pxhr/.
	Prefix string `json:"prefix,omitempty"`

	// Paths which resources may be shared, as Caddy path matcher patterns
	// (`*.mp4`, `/downloads/*`). Default: every GET resource of at least
	// MinSize bytes.
	Paths []string `json:"paths,omitempty"`

	// MinSize is the smallest resource shared, in bytes. Default: 256KiB.
	MinSize *int64 `json:"min_size,omitempty"`

	// MaxSize is the largest resource shared, in bytes. Default: 4GiB.
	MaxSize int64 `json:"max_size,omitempty"`

	// BlockSize is the unit of hashing and exchange, between 16KiB and
	// 4MiB. Default: 256KiB.
	BlockSize int `json:"block_size,omitempty"`

	// CacheSize bounds the on-disk cache used to answer Range requests
	// when the upstream ignores Range. Default: 256MiB; a negative value
	// turns the cache off.
	CacheSize int64 `json:"cache_size,omitempty"`

	// HTTPRateLimit caps the bytes per second the module lets through for
	// shareable resources, shared by all visitors: a way to play a loaded
	// server in staging and demos. Zero means no limit.
	HTTPRateLimit int64 `json:"http_rate_limit,omitempty"`

	// Offload says when the server counts as loaded, so that clients lean
	// on peers harder (loadpolicy.go). Default: while HTTPRateLimit holds
	// responses back.
	Offload *OffloadPolicy `json:"offload,omitempty"`

	// AB splits visitors into A/B groups: this percentage (0-100) is
	// assigned to the P2P group, the rest download over HTTP only and
	// report the same way. Unset: every visitor uses P2P, no cookie.
	AB *float64 `json:"ab,omitempty"`

	// Dashboard serves the operators' dashboard at {prefix}dashboard and
	// its JSON at {prefix}dashboard/stats, so that one matcher
	// (`basic_auth {prefix}dashboard*`) protects both. Off by default; the
	// operators' figures are served nowhere else.
	Dashboard bool `json:"dashboard,omitempty"`

	// Auto lists path patterns (`*.mp4`, `/downloads/*`) whose links and
	// images the injected client accelerates with no page code. Off by
	// default.
	Auto []string `json:"auto,omitempty"`

	// ICEServers are more STUN/TURN servers clients use to reach each
	// other beyond one network, told to every visitor in the
	// coordinator's welcome after the embedded STUN server.
	ICEServers []ICEServer `json:"ice_servers,omitempty"`

	// STUN is the UDP listen address of the embedded STUN server, or
	// "off". Default: port 3478 on the addresses the site listens on.
	// Visitors are told stun:<the page's host>:<port>.
	STUN string `json:"stun,omitempty"`

	// TURN runs a TURN relay (turn.go). Off by default.
	TURN *TURNConfig `json:"turn,omitempty"`

	// AllowedOrigins lets pages of these other origins (scheme://host)
	// use the coordinator; by default only the site's own pages may.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`

	// MaxNeighbours is how many peers the coordinator keeps suggesting to
	// each visitor. Default: 6.
	MaxNeighbours int `json:"max_neighbours,omitempty"`

	// MaxConnectionsPerAddress caps the coordinator WebSockets one client
	// address (Caddy's client IP, so trusted_proxies applies; IPv6 by
	// /64) may hold; past it the upgrade is answered 429. Default: 50;
	// -1 turns the cap off.
	MaxConnectionsPerAddress int `json:"max_connections_per_address,omitempty"`

	// Inject adds the client tag to HTML pages going out. Default: true.
	Inject *bool `json:"inject,omitempty"`

	// InjectExclude lists paths whose pages are left alone, as Caddy path
	// matcher patterns like Paths (`/admin/*`, `*.html`).
	InjectExclude []string `json:"inject_exclude,omitempty"`

	// Backplane shares swarms with other nodes through NATS (backplane.go).
	Backplane *BackplaneConfig `json:"backplane,omitempty"`

	// Upload is the site's policy on visitors' uploads (upload.go):
	// "always" (default), "consent" (only after the page records the
	// visitor's consent) or "never" (visitors only download).
	Upload string `json:"upload,omitempty"`

	// ServiceWorker turns on service worker mode (serviceworker.go): the
	// injected client registers {prefix}sw.js, which answers the page's
	// requests for shared files from verified blocks. Off when absent.
	ServiceWorker *ServiceWorkerConfig `json:"service_worker,omitempty"`

	logger    *zap.Logger
	paths     caddyhttp.MatchPath
	noInject  caddyhttp.MatchPath // InjectExclude
	manifests *manifestService
	ranges    *rangeCache
	limiter   *byteLimiter
	load      *loadSignal
	client    *clientAsset
	worker    *workerScript
	injector  *inject.Injector
	coord     *coordinator.Coordinator
	metrics   *metrics
	registry  *prometheus.Registry
	reports   *reportBook
	origin    *originBook
	ice       *iceState
	history   *usageHistory
	site      *siteState
	// historyStop ends the goroutine sampling into history; it closes historyDone.
	historyStop, historyDone chan struct{}
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.p2pxhr",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision fills defaults and sets up the handler's parts.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	fillDefaults(h)
	expandPlaceholders(h)
	// Caddy validates after provisioning; checked first here so a bad value
	// is reported in the config's own words, not by a part built from it.
	if err := h.Validate(); err != nil {
		return err
	}
	if err := checkReachable(ctx, h.Prefix); err != nil {
		return err
	}
	if len(h.Paths) > 0 {
		h.paths = caddyhttp.MatchPath(h.Paths)
		if err := h.paths.Provision(ctx); err != nil {
			return fmt.Errorf("p2pxhr: paths: %w", err)
		}
	}
	if err := h.provisionInjectExclude(); err != nil {
		return err
	}
	h.registry = ctx.GetMetricsRegistry()
	h.metrics = metricsFor(h.registry)
	h.limiter = newByteLimiter(h.HTTPRateLimit)
	h.load = newLoadSignal(h.Offload, h.limiter)
	if err := h.provisionICE(ctx); err != nil {
		return fmt.Errorf("p2pxhr: %w", err)
	}
	h.manifests = newManifestService(h)
	client, err := loadClientAsset()
	if err != nil {
		return fmt.Errorf("p2pxhr: client: %w", err)
	}
	h.client = client
	if h.worker, err = h.newWorkerScript(); err != nil {
		return fmt.Errorf("p2pxhr: service worker: %w", err)
	}
	// The site's coordinator, manifests, range cache and books, kept
	// across reloads (sitestate.go).
	if h.site, err = joinSite(ctx, h); err != nil {
		return err
	}
	h.metrics.coords.add(h.coord)
	if *h.Inject {
		if h.injector, err = h.newInjector(); err != nil {
			return fmt.Errorf("p2pxhr: injection: %w", err)
		}
	}
	h.historyStop, h.historyDone = make(chan struct{}), make(chan struct{})
	// The baseline now, before this config serves: a first sample taken by
	// the goroutine, which may run late, would leave the bytes counted
	// before it out of the history.
	h.history.observe(time.Now(), h.sample())
	go h.recordHistory(h.historyStop, h.historyDone)
	return nil
}

// ICEServer is one STUN or TURN server, as RTCPeerConnection takes it.
type ICEServer = protocol.ICEServer

// fillDefaults sets every option left unset to its default.
func fillDefaults(h *Handler) {
	if h.Prefix == "" {
		h.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(h.Prefix, "/") {
		h.Prefix += "/"
	}
	if h.MinSize == nil {
		v := int64(DefaultMinSize)
		h.MinSize = &v
	}
	if h.MaxSize == 0 {
		h.MaxSize = DefaultMaxSize
	}
	if h.BlockSize == 0 {
		h.BlockSize = protocol.DefaultBlockSize
	}
	if h.CacheSize == 0 {
		h.CacheSize = DefaultCacheSize
	}
	if h.Inject == nil {
		on := true
		h.Inject = &on
	}
}

// expandPlaceholders replaces global placeholders such as {env.TURN_SECRET}
// in the values the module passes on as they are: ICE servers and allowed
// origins.
func expandPlaceholders(h *Handler) {
	repl := caddy.NewReplacer()
	for i := range h.ICEServers {
		s := &h.ICEServers[i]
		for j, u := range s.URLs {
			s.URLs[j] = repl.ReplaceKnown(u, "")
		}
		s.Username = repl.ReplaceKnown(s.Username, "")
		s.Credential = repl.ReplaceKnown(s.Credential, "")
	}
	for i, o := range h.AllowedOrigins {
		h.AllowedOrigins[i] = repl.ReplaceKnown(o, "")
	}
}

// Validate checks the configuration once defaults are filled.
func (h *Handler) Validate() error {
	if !strings.HasPrefix(h.Prefix, "/") || strings.ContainsAny(h.Prefix, "*?#% ") || h.Prefix == "/" {
		return fmt.Errorf("p2pxhr: prefix %q must be a path like /_p2pxhr/ (not /, no wildcards)", h.Prefix)
	}
	if h.BlockSize < protocol.MinBlockSize || h.BlockSize > protocol.MaxBlockSize {
		return fmt.Errorf("p2pxhr: block_size %d outside %d..%d bytes (16KiB..4MiB)", h.BlockSize, protocol.MinBlockSize, protocol.MaxBlockSize)
	}
	if *h.MinSize < 0 {
		return fmt.Errorf("p2pxhr: min_size %d is negative", *h.MinSize)
	}
	if h.MaxSize < *h.MinSize {
		return fmt.Errorf("p2pxhr: max_size %d is smaller than min_size %d", h.MaxSize, *h.MinSize)
	}
	if blocks := protocol.BlockCount(h.MaxSize, h.BlockSize); blocks > protocol.MaxBlocks {
		return fmt.Errorf("p2pxhr: max_size %d at block_size %d gives %d blocks, more than the limit of %d", h.MaxSize, h.BlockSize, blocks, protocol.MaxBlocks)
	}
	if h.MaxNeighbours < 0 || h.MaxNeighbours > maxNeighboursLimit {
		return fmt.Errorf("p2pxhr: max_neighbours %d outside 1..%d", h.MaxNeighbours, maxNeighboursLimit)
	}
	for _, s := range h.ICEServers {
		for _, u := range s.URLs {
			if !protocol.IsICEURL(u) {
				return fmt.Errorf("p2pxhr: ice_server %q must be a stun:, stuns:, turn: or turns: URL", u)
			}
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("p2pxhr: ice_server %v: %w", s.URLs, err)
		}
	}
	if n := len(h.ICEServers); n > protocol.MaxICEServers-2 {
		return fmt.Errorf("p2pxhr: %d ice_server entries; at most %d fit beside the embedded STUN and TURN", n, protocol.MaxICEServers-2)
	}
	if h.STUN != "" && h.STUN != "off" {
		if _, _, err := net.SplitHostPort(h.STUN); err != nil {
			return fmt.Errorf("p2pxhr: stun %q: want off or a UDP listen address such as :3478", h.STUN)
		}
	}
	if h.TURN != nil {
		if err := h.TURN.validate(); err != nil {
			return err
		}
	}
	if h.AB != nil && (*h.AB < 0 || *h.AB > 100) {
		return fmt.Errorf("p2pxhr: ab %v is not a percentage between 0 and 100", *h.AB)
	}
	if h.Offload != nil {
		if err := h.Offload.validate(); err != nil {
			return err
		}
	}
	if h.HTTPRateLimit < 0 {
		return fmt.Errorf("p2pxhr: http_rate_limit %d is negative", h.HTTPRateLimit)
	}
	if err := h.validateServiceWorker(); err != nil {
		return err
	}
	return h.validateUpload()
}

// Cleanup releases what Provision set up when the config is unloaded.
func (h *Handler) Cleanup() error {
	var errs []error
	if h.historyStop != nil {
		close(h.historyStop)
		<-h.historyDone
	}
	if h.coord != nil {
		h.metrics.coords.remove(h.coord)
	}
	if h.registry != nil {
		forgetMetrics(h.registry)
	}
	if h.site != nil {
		// Closes the coordinator and the range cache only if no config
		// of the site uses them any more.
		errs = append(errs, h.site.leave(h))
	}
	// Builds in flight are left to finish: their waiters are requests the
	// old server is still draining, and a build ends with its last waiter.
	errs = append(errs, h.ice.close())
	return errors.Join(errs...)
}

// ServeHTTP routes the module's own paths and wraps everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if isSubrequest(r) {
		return next.ServeHTTP(w, r)
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, h.Prefix); ok {
		return h.serveOwnRoute(w, r, rest, next)
	}
	return h.serveInjected(w, r, next)
}

// serveOwnRoute answers the routes under the prefix; unknown ones fall
// through to the site so a page of the same name still works.
func (h *Handler) serveOwnRoute(w http.ResponseWriter, r *http.Request, route string, next caddyhttp.Handler) error {
	if h.client.has(route) {
		return h.client.serve(w, r, route)
	}
	switch route {
	case "manifest":
		return h.serveManifest(w, r)
	case "ws":
		h.coord.ServeHTTP(w, r)
		return nil
	case "sw.js":
		return h.serveWorker(w, r)
	case "stats":
		return h.serveReports(w, r)
	case "dashboard/stats":
		if h.Dashboard {
			return h.serveStats(w, r)
		}
	}
	if served, err := h.serveDashboard(w, r, route); served {
		return err
	}
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
