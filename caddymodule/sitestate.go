package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// sites holds the state of each site that must outlive a config reload, as
// reverse_proxy keeps its hosts and caddy-ratelimit its limiters: Caddy
// provisions the new config's handlers before it cleans up the old one's,
// so a site that is still configured keeps its siteState (the usage count
// never reaches zero) and one that is gone has it destroyed.
var sites = caddy.NewUsagePool()

// siteState is what a site keeps across reloads: the coordinator with its
// WebSocket connections and swarms, the built manifests (handed from one
// handler's manifest service to the next), the range cache, and the
// operators' books (reports, origin bytes, history). To keep something
// else across reloads, add a field here and share it in attach; Destruct
// releases what needs releasing.
//
// The handlers of the live configs read settings from themselves, per
// request; the long-lived parts that take callbacks (the coordinator) reach
// the newest live handler through current(), so they follow the new
// config's settings. The few settings a running part was built with are
// compared on each reload; a change rebuilds that part (and only then are
// its users cut over): max_neighbours, max_connections_per_address,
// allowed_origins, backplane and upload rebuild the coordinator (peers
// reconnect and rejoin by themselves, and hear the new upload policy),
// cache_size the range cache, block_size, min_size and max_size start the
// manifests afresh.
type siteState struct {
	key string

	mu       sync.Mutex                 // serialises attach and leave
	handlers atomic.Pointer[[]*Handler] // the live handlers, oldest first

	coord      *coordinator.Coordinator
	coordBuilt string // the settings coord was built with
	ranges     *rangeCache
	rangesSize int64
	reports    *reportBook
	origin     *originBook
	history    *usageHistory
}

// Destruct implements caddy.Destructor: the site is no longer configured,
// so its peers are told the server is going (close code 1001) and its
// cache directory is removed.
func (s *siteState) Destruct() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.coord != nil {
		errs = append(errs, s.coord.Close())
	}
	if s.ranges != nil {
		errs = append(errs, s.ranges.close())
	}
	return errors.Join(errs...)
}

// live returns the live handlers, oldest first.
func (s *siteState) live() []*Handler {
	if p := s.handlers.Load(); p != nil {
		return *p
	}
	return nil
}

// current is the newest live handler: the config whose settings apply.
func (s *siteState) current() *Handler {
	hs := s.live()
	if len(hs) == 0 {
		return nil
	}
	return hs[len(hs)-1]
}

// siteKey names the site a handler serves: the addresses its server
// listens on, the hosts of the site's route and the prefix. Two handlers
// share state only when all three agree, that is when they answer the
// same requests; a reload that keeps them keeps the state. It is "" when
// the handler is not being provisioned inside an HTTP server.
func siteKey(ctx caddy.Context, prefix string) string {
	srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok || srv == nil {
		return ""
	}
	listen := slices.Clone(srv.Listen)
	slices.Sort(listen)
	var hosts []string
	if route := enclosingRoute(srv.Routes); route != nil {
		for _, set := range route.MatcherSets {
			for _, m := range set {
				switch m := m.(type) {
				case caddyhttp.MatchHost:
					hosts = append(hosts, m...)
				case *caddyhttp.MatchHost:
					hosts = append(hosts, *m...)
				}
			}
		}
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	return fmt.Sprintf("p2pxhr site listen=%s hosts=%s prefix=%s",
		strings.Join(listen, ","), strings.Join(hosts, ","), prefix)
}

// joinSite attaches h to its site's state, making the state on first use,
// and gives h the site's long-lived parts. h's own parts (limiter,
// manifest service, ICE state) must be set up already.
func joinSite(ctx caddy.Context, h *Handler) (*siteState, error) {
	key := siteKey(ctx, h.Prefix)
	if key == "" {
		key = fmt.Sprintf("p2pxhr handler %p", h) // not in a server: nothing to share
	}
	v, _, err := sites.LoadOrNew(key, func() (caddy.Destructor, error) {
		return &siteState{key: key, reports: newReportBook(), origin: newOriginBook(),
			history: newUsageHistory(historySlot, historySlots)}, nil
	})
	if err != nil {
		return nil, err
	}
	s := v.(*siteState)
	if err := s.attach(h); err != nil {
		_, _ = sites.Delete(key)
		return nil, err
	}
	return s, nil
}

// attach gives h the site's parts, rebuilding those whose settings
// changed, and makes h the current handler.
func (s *siteState) attach(h *Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h.reports, h.origin, h.history = s.reports, s.origin, s.history

	// Manifests built under the same block size and limits stay valid:
	// the new handler's service starts with them, so swarms stay known.
	if prev := s.current(); prev != nil && prev.manifests != nil && sameManifestSettings(prev, h) {
		for _, e := range prev.manifests.entries() {
			h.manifests.store(e)
		}
	}

	if h.CacheSize > 0 {
		if s.ranges == nil || s.rangesSize != h.CacheSize {
			rc, err := newRangeCache(rangeCacheDir(), h.CacheSize, h.logger)
			if err != nil {
				return fmt.Errorf("p2pxhr: range cache: %w", err)
			}
			s.ranges, s.rangesSize = rc, h.CacheSize
		}
		h.ranges = s.ranges
	}

	if built := coordinatorSettings(h); s.coord == nil || s.coordBuilt != built {
		c, err := s.newCoordinator(h)
		if err != nil {
			return fmt.Errorf("p2pxhr: coordinator: %w", err)
		}
		s.coord, s.coordBuilt = c, built
	}
	h.coord = s.coord

	hs := append(slices.Clone(s.live()), h)
	s.handlers.Store(&hs)
	// The coordinator polls the hint every second; the newest config's
	// policy holds from its first welcome on.
	s.coord.SetLoaded(s.current().load.Loaded())
	return nil
}

// leave detaches h (its config is unloaded, or failed to load) and closes
// the parts only h used that a newer config replaced. Once no handler is
// left the pool destroys the state.
func (s *siteState) leave(h *Handler) error {
	s.mu.Lock()
	hs := slices.DeleteFunc(slices.Clone(s.live()), func(o *Handler) bool { return o == h })
	s.handlers.Store(&hs)
	var errs []error
	if h.coord != nil && h.coord != s.coord && !slices.ContainsFunc(hs, func(o *Handler) bool { return o.coord == h.coord }) {
		errs = append(errs, h.coord.Close())
	}
	if h.ranges != nil && h.ranges != s.ranges && !slices.ContainsFunc(hs, func(o *Handler) bool { return o.ranges == h.ranges }) {
		errs = append(errs, h.ranges.close())
	}
	s.mu.Unlock()
	_, err := sites.Delete(s.key)
	return errors.Join(append(errs, err)...)
}

// newCoordinator builds the site's coordinator behind {prefix}ws: swarms
// open only for manifests built here, and the offload policy (by default
// the rate limit's pressure) is the "server loaded" hint. Its callbacks reach the live handlers, not h, so
// they follow later configs: a swarm is known while any live config holds
// its manifest, and the load hint and ICE servers are the newest config's.
func (s *siteState) newCoordinator(h *Handler) (*coordinator.Coordinator, error) {
	bp, err := h.newBackplane()
	if err != nil {
		return nil, err
	}
	c, err := coordinator.New(coordinator.Config{
		Backplane: bp,
		KnownSiteSwarm: func(site, id string) bool {
			return slices.ContainsFunc(s.live(), func(o *Handler) bool { return o.manifests.Known(site, id) })
		},
		Site: siteOf,
		SwarmBlocks: func(id string) (int, bool) {
			for _, o := range s.live() {
				if n, ok := o.manifests.Blocks(id); ok {
					return n, true
				}
			}
			return 0, false
		},
		SwarmSize: func(id string) (int64, bool) {
			for _, o := range s.live() {
				if n, ok := o.manifests.Size(id); ok {
					return n, true
				}
			}
			return 0, false
		},
		UploadPolicy:             h.Upload,
		MaxNeighbours:            h.MaxNeighbours,
		MaxConnectionsPerAddress: h.MaxConnectionsPerAddress,
		AllowedOrigins:           h.AllowedOrigins,
		ClientIP:                 clientIP,
		Loaded: func() bool {
			cur := s.current()
			return cur != nil && cur.load.Loaded()
		},
		ICEServers: func(r *http.Request) []protocol.ICEServer {
			if cur := s.current(); cur != nil {
				return cur.iceServersFor(r)
			}
			return nil
		},
		Logger: h.logger.Named("coordinator"),
	})
	if err != nil && bp != nil {
		bp.Close()
	}
	return c, err
}

// coordinatorSettings are the settings a coordinator is built with and
// cannot change while running.
func coordinatorSettings(h *Handler) string {
	bp, _ := json.Marshal(h.Backplane) // plain fields always marshal
	return fmt.Sprintf("neighbours=%d per-address=%d origins=%q backplane=%s upload=%q", h.MaxNeighbours, h.MaxConnectionsPerAddress, h.AllowedOrigins, bp, h.Upload)
}

// sameManifestSettings reports whether manifests built under a's settings
// are what b would build.
func sameManifestSettings(a, b *Handler) bool {
	return a.BlockSize == b.BlockSize && *a.MinSize == *b.MinSize && a.MaxSize == b.MaxSize
}

// entries returns the cached manifests, least recently used first, so
// storing them in order into another service keeps their recency.
func (s *manifestService) entries() []*manifestEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*manifestEntry, 0, s.lru.Len())
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		out = append(out, el.Value.(*manifestEntry))
	}
	return out
}
