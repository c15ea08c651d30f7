package caddymodule

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
	"go.uber.org/zap"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// The manifest cache is bounded by bytes. An entry keeps the JSON sent to
// clients (67 bytes per block: a quoted hex digest and a comma) and its
// metadata, not the parsed digests, which cost 80 bytes more per block
// (measured: 165 bytes per block with both; TestManifestEntryCostMatchesTheHeap).
const (
	// defaultManifestBytes is the budget unless the configuration allows
	// manifests so large that fewer than 4 would fit.
	defaultManifestBytes = 64 << 20
	manifestBlockBytes   = 67
	// manifestEntryOverhead is what an entry costs besides its JSON and
	// strings: structs, the LRU element, map slots, the swarm id's record
	// (measured with 2,000 one-block entries).
	manifestEntryOverhead = 640
)

// manifestCostEstimate is what a manifest of n blocks costs in the cache,
// for sizing the budget before any is built.
func manifestCostEstimate(blocks int) int64 {
	return int64(blocks)*manifestBlockBytes + manifestEntryOverhead + 1024
}

// manifestKey is what a manifest is cached and built under: the site the
// request was served for (siteOf) and the resource's path and query there.
type manifestKey struct{ site, target string }

// manifestEntry is one built manifest with what is needed to revalidate
// it against the origin and to answer for it quickly.
type manifestEntry struct {
	key manifestKey
	// manifest without its block digests and headers, which only body keeps.
	manifest *protocol.Manifest
	blocks   int
	body     []byte // the JSON sent to clients
	cost     int64  // bytes it holds, as the cache counts them
}

// newManifestEntry prepares m for the cache: its JSON, and the rest of it
// without the digests.
func newManifestEntry(key manifestKey, m *protocol.Manifest) (*manifestEntry, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	meta := *m
	meta.Blocks, meta.Headers = nil, nil // served from body only
	cost := int64(cap(body)) + manifestEntryOverhead + int64(len(key.site)+len(key.target)+
		len(m.ID)+len(m.URL)+len(m.ETag)+len(m.LastModified)+len(m.ContentType))
	return &manifestEntry{key: key, manifest: &meta, blocks: len(m.Blocks), body: body, cost: cost}, nil
}

// manifestError is a failure to produce a manifest, with the HTTP status
// and the reason the client is told.
type manifestError struct {
	status int
	reason string
}

func (e *manifestError) Error() string { return e.reason }

func refuse(status int, format string, args ...any) *manifestError {
	return &manifestError{status: status, reason: fmt.Sprintf(format, args...)}
}

// manifestService builds manifests by streaming a resource once through
// the site's own handler chain, and caches them by site, URL and validator.
type manifestService struct {
	h      *Handler
	builds *buildGroup
	limits *buildLimiter

	mu       sync.Mutex
	lru      *list.List // of *manifestEntry, most recent first
	byKey    map[manifestKey]*list.Element
	ids      map[string]*swarmRef
	bytes    int64 // the entries' cost
	maxBytes int64
}

// swarmRef is what the coordinator asks about a swarm id: its block count
// and size (fixed by the id, a digest over them) and the sites whose
// cached manifests carry it, each with the number of such manifests.
type swarmRef struct {
	blocks int
	size   int64
	sites  map[string]int
}

func newManifestService(h *Handler) *manifestService {
	return &manifestService{
		h:      h,
		builds: newBuildGroup(h.metrics.buildWaiters),
		limits: newBuildLimiter(h.metrics.builds),
		lru:    list.New(),
		byKey:  make(map[manifestKey]*list.Element),
		ids:    make(map[string]*swarmRef),
		// Room for 4 of the largest manifests the configuration allows.
		maxBytes: max(defaultManifestBytes, 4*manifestCostEstimate(protocol.BlockCount(h.MaxSize, h.BlockSize))),
	}
}

// Known reports whether site has a cached manifest whose swarm id is id;
// the coordinator opens a swarm for a connection only then.
func (s *manifestService) Known(site, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.ids[id]
	return ok && ref.sites[site] > 0
}

// Blocks gives the block count of a swarm built here, so the coordinator
// refuses joiners that claim another.
func (s *manifestService) Blocks(id string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.ids[id]
	if !ok {
		return 0, false
	}
	return ref.blocks, true
}

// Size gives the resource size of a swarm built here, to clamp reports
// and peers' stats.
func (s *manifestService) Size(id string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref, ok := s.ids[id]
	if !ok {
		return 0, false
	}
	return ref.size, true
}

func (s *manifestService) cached(key manifestKey) *manifestEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[key]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*manifestEntry)
	}
	return nil
}

// store caches e (again: a revalidated entry may have been evicted while
// the origin was asked, and its swarm id must be known while it is served).
func (s *manifestService) store(e *manifestEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[e.key]; ok {
		if el.Value.(*manifestEntry) == e {
			s.lru.MoveToFront(el)
			return
		}
		s.removeLocked(el)
	}
	s.byKey[e.key] = s.lru.PushFront(e)
	s.bytes += e.cost
	s.register(e, +1)
	for s.bytes > s.maxBytes && s.lru.Len() > 1 {
		s.removeLocked(s.lru.Back())
	}
}

func (s *manifestService) removeLocked(el *list.Element) {
	e := s.lru.Remove(el).(*manifestEntry)
	delete(s.byKey, e.key)
	s.bytes -= e.cost
	s.register(e, -1)
}

// register counts e for its swarm id and site (d = +1) or stops counting
// it (d = -1): an id stays known while any cached manifest carries it.
func (s *manifestService) register(e *manifestEntry, d int) {
	m := e.manifest
	ref := s.ids[m.ID]
	if ref == nil {
		ref = &swarmRef{blocks: e.blocks, size: m.Size, sites: make(map[string]int)}
		s.ids[m.ID] = ref
	}
	if ref.sites[e.key.site] += d; ref.sites[e.key.site] <= 0 {
		delete(ref.sites, e.key.site)
	}
	if len(ref.sites) == 0 {
		delete(s.ids, m.ID)
	}
}

// Get returns the current manifest of target (a path with optional query)
// on the request's site, revalidating a cached one with a conditional
// request and building anew when the origin's validator changed.
// Concurrent calls for one site and target share one trip to the origin,
// which goes on while any of them waits.
func (s *manifestService) Get(r *http.Request, target string) (*manifestEntry, error) {
	key := manifestKey{site: siteOf(r), target: target}
	server, ok := r.Context().Value(caddyhttp.ServerCtxKey).(http.Handler)
	if !ok {
		return nil, refuse(http.StatusInternalServerError, "no Caddy server in the request context")
	}
	// What the build needs of the request, taken now: the build may
	// outlive it.
	tmpl := &http.Request{Host: r.Host, TLS: r.TLS, RemoteAddr: r.RemoteAddr, Header: http.Header{}}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		tmpl.Header.Set("User-Agent", ua)
	}
	addr := coordinator.AddressKey(clientIP(r))
	return s.builds.do(r.Context(), key, func(ctx context.Context) (*manifestEntry, error) {
		e, result, err := s.fetch(ctx, server, tmpl, key, addr)
		s.h.metrics.manifests.WithLabelValues(result).Inc()
		return e, err
	})
}

// fetch revalidates or builds the manifest of key by a request like tmpl
// through server, for a client at addr, and names the result for the
// metrics: built, revalidated, refused, failed or abandoned.
func (s *manifestService) fetch(ctx context.Context, server http.Handler, tmpl *http.Request, key manifestKey, addr string) (*manifestEntry, string, error) {
	vr, err := http.NewRequestWithContext(withSubrequestMark(ctx), http.MethodGet, key.target, nil)
	if err != nil {
		return nil, "refused", refuse(http.StatusBadRequest, "url: %v", err)
	}
	vr.Host, vr.TLS, vr.RemoteAddr = tmpl.Host, tmpl.TLS, tmpl.RemoteAddr
	vr.Proto, vr.ProtoMajor, vr.ProtoMinor = "HTTP/1.1", 1, 1
	vr.Header = tmpl.Header.Clone()
	vr.Header.Set("Accept-Encoding", "identity") // hash the bytes themselves
	old := s.cached(key)
	if old != nil {
		if old.manifest.ETag != "" {
			vr.Header.Set("If-None-Match", old.manifest.ETag)
		} else if old.manifest.LastModified != "" {
			vr.Header.Set("If-Modified-Since", old.manifest.LastModified)
		}
	}
	bw := newBuildWriter(s.h, vr)
	bw.old = old
	bw.acquire = func() (func(), error) { return s.limits.acquire(ctx, addr) }
	defer bw.releaseSlot()
	err = serveBuild(ctx, s.h.logger, func() { server.ServeHTTP(bw, vr) }, bw.stopped)
	if err == nil && ctx.Err() != nil {
		err = buildContextError(ctx)
	}
	if err != nil {
		if errors.Is(err, errBuildAbandoned) {
			s.h.logger.Debug("manifest build abandoned", zap.String("site", key.site), zap.String("url", key.target))
			return nil, "abandoned", err
		}
		return nil, "failed", err
	}
	if old != nil && (bw.status == http.StatusNotModified || bw.unchanged) {
		s.store(old)
		return old, "revalidated", nil
	}
	m, err := bw.finish()
	if err != nil {
		result := "refused"
		if me, ok := err.(*manifestError); ok && me.status >= 500 {
			result = "failed"
		}
		return nil, result, err
	}
	m.URL = key.target
	e, err := newManifestEntry(key, m)
	if err != nil {
		return nil, "failed", err
	}
	s.store(e)
	s.h.logger.Debug("manifest built",
		zap.String("site", key.site), zap.String("url", key.target), zap.String("id", m.ID), zap.Int64("size", m.Size))
	return e, "built", nil
}

// errStopBuild ends the origin's response early once it can't be shared.
var errStopBuild = errors.New("p2pxhr: manifest build stopped")

// buildWriter is the ResponseWriter a manifest build hands to the origin:
// it checks the headers once, then hashes the body block by block.
type buildWriter struct {
	h       *Handler
	req     *http.Request
	header  http.Header
	status  int
	refusal *manifestError
	hasher  *protocol.BlockHasher
	// abandoned: the build's context ended and the body was refused.
	abandoned bool
	// old is the cached manifest being revalidated, if any; unchanged:
	// the origin answered 200 instead of 304, but with old's validators
	// and length, so the body was not read.
	old       *manifestEntry
	unchanged bool
	// acquire takes a hashing slot before the first byte is hashed;
	// release gives it back.
	acquire func() (release func(), err error)
	release func()
}

func newBuildWriter(h *Handler, req *http.Request) *buildWriter {
	return &buildWriter{h: h, req: req, header: make(http.Header), hasher: protocol.NewBlockHasher(h.BlockSize)}
}

func (b *buildWriter) Header() http.Header { return b.header }

func (b *buildWriter) WriteHeader(status int) {
	if b.status != 0 || status < 200 {
		return
	}
	b.status = status
	b.refusal = b.check()
	b.unchanged = b.refusal == nil && status == http.StatusOK && b.old != nil && sameVersion(b.old.manifest, b.header)
}

// sameVersion reports whether a full response's headers name the version
// m was built from: the same ETag and Last-Modified (at least one of them
// present) and the same Content-Length. The version a conditional request
// would have confirmed with 304, for an origin that never answers 304.
func sameVersion(m *protocol.Manifest, hdr http.Header) bool {
	cl, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64)
	return err == nil && cl == m.Size && (m.ETag != "" || m.LastModified != "") &&
		hdr.Get("ETag") == m.ETag && hdr.Get("Last-Modified") == m.LastModified
}

// check decides from status and headers whether the body is worth hashing.
func (b *buildWriter) check() *manifestError {
	switch {
	case b.status == http.StatusNotModified:
		return refuse(http.StatusBadGateway, "the origin answered 304 to a fresh request")
	case b.status == http.StatusNotFound || b.status == http.StatusGone:
		return refuse(http.StatusNotFound, "the origin has nothing at %s", b.req.URL.RequestURI())
	case b.status == http.StatusUnauthorized || b.status == http.StatusForbidden:
		return refuse(http.StatusForbidden, "the origin requires authorization (status %d)", b.status)
	case b.status >= 500:
		return refuse(http.StatusBadGateway, "the origin failed with status %d", b.status)
	case b.status != http.StatusOK:
		return refuse(http.StatusForbidden, "the origin answered status %d; only 200 responses are shared", b.status)
	}
	if reason := responseMayShare(b.header); reason != "" {
		return refuse(http.StatusForbidden, "not shareable: %s", reason)
	}
	if b.header.Get("ETag") == "" && b.header.Get("Last-Modified") == "" {
		return refuse(http.StatusForbidden, "not shareable: the origin sends neither ETag nor Last-Modified, so a change could not be detected")
	}
	if cl, err := strconv.ParseInt(b.header.Get("Content-Length"), 10, 64); err == nil {
		return b.checkSize(cl)
	}
	return nil
}

func (b *buildWriter) checkSize(n int64) *manifestError {
	if n > b.h.MaxSize {
		return refuse(http.StatusForbidden, "not shareable: larger than max_size (%s)", humanize.IBytes(uint64(b.h.MaxSize)))
	}
	if n < *b.h.MinSize {
		return refuse(http.StatusForbidden, "not shareable: %d bytes is smaller than min_size (%s)", n, humanize.IBytes(uint64(*b.h.MinSize)))
	}
	return nil
}

func (b *buildWriter) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	if b.refusal != nil || b.unchanged {
		return 0, errStopBuild
	}
	// file_server copies without looking at the context: stop it here
	// once nobody waits for the build.
	if err := b.req.Context().Err(); err != nil {
		b.abandoned = true
		return 0, err
	}
	if b.release == nil && b.acquire != nil {
		release, err := b.acquire()
		var me *manifestError
		switch {
		case errors.As(err, &me):
			b.refusal = me
			return 0, errStopBuild
		case err != nil:
			b.abandoned = true
			return 0, err
		}
		b.release = release
	}
	if b.hasher.Size()+int64(len(p)) > b.h.MaxSize {
		b.refusal = b.checkSize(b.hasher.Size() + int64(len(p)))
		return 0, errStopBuild
	}
	return b.hasher.Write(p)
}

// releaseSlot gives back the hashing slot, if the build took one.
func (b *buildWriter) releaseSlot() {
	if b.release != nil {
		b.release()
	}
}

// stopped reports whether the writer refused the body.
func (b *buildWriter) stopped() bool { return b.refusal != nil || b.abandoned || b.unchanged }

// Flush is a no-op: nothing is sent anywhere until the build is done.
func (b *buildWriter) Flush() {}

func (b *buildWriter) finish() (*protocol.Manifest, error) {
	if b.status == 0 {
		return nil, refuse(http.StatusBadGateway, "the origin wrote no response")
	}
	if b.refusal != nil {
		return nil, b.refusal
	}
	if err := b.checkSize(b.hasher.Size()); err != nil {
		return nil, err
	}
	if cl, err := strconv.ParseInt(b.header.Get("Content-Length"), 10, 64); err == nil && cl != b.hasher.Size() {
		return nil, refuse(http.StatusBadGateway, "the origin sent %d of %d bytes", b.hasher.Size(), cl)
	}
	m := b.hasher.Manifest()
	m.ETag = b.header.Get("ETag")
	m.LastModified = b.header.Get("Last-Modified")
	m.ContentType = b.header.Get("Content-Type")
	m.Headers = sharedResponseHeaders(b.header)
	return m, nil
}
