package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Bounds on manifest builds, so that requests for many resources (or many
// query strings of one) cannot make the server read and hash without end:
// at most maxHashingBuilds builds read and hash a body at once, the others
// wait for a slot; one client address (an IPv4 address, an IPv6 /64) may
// have at most maxBuildsPerAddress builds hashing or waiting, and is told
// 429 past that. Revalidations that end in 304 take no slot.
const (
	maxHashingBuilds    = 4
	maxBuildsPerAddress = 8
)

// maxBuildTime bounds one manifest build, however long its requesters
// are willing to wait: a 4 GiB file from an origin at 10 MB/s fits.
const maxBuildTime = 10 * time.Minute

// errBuildAbandoned ends a build that every requester stopped waiting for.
var errBuildAbandoned = errors.New("p2pxhr: every requester of the manifest went away")

// buildContextError says why a build's context ended: every requester
// left (errBuildAbandoned), or the build ran past maxBuildTime.
func buildContextError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return refuse(http.StatusGatewayTimeout, "the origin took longer than %v to send the resource", maxBuildTime)
	}
	return errBuildAbandoned
}

// buildGroup runs at most one manifest build per key for any number of
// requesters. Unlike singleflight, a build is not the first requester's:
// it runs on a context of its own, detached from every request and
// bounded by maxBuildTime, which is cancelled only once all its requesters
// have gone; and a panic in it is an error for each of them, never raised
// again in their goroutines (where net/http would log a stack trace per
// requester and drop their connections).
type buildGroup struct {
	waiting prometheus.Gauge // requesters waiting for a build now

	mu     sync.Mutex
	builds map[manifestKey]*build
}

// build is one manifest build in flight.
type build struct {
	done    chan struct{} // closed when entry and err are set
	entry   *manifestEntry
	err     error
	waiters int
	cancel  context.CancelFunc
}

func newBuildGroup(waiting prometheus.Gauge) *buildGroup {
	return &buildGroup{waiting: waiting, builds: make(map[manifestKey]*build)}
}

// do waits for the build of key, starting run for it when none is in
// flight. run gets a context that keeps ctx's values but not its
// cancellation. When ctx ends first, do returns ctx's error and the build
// goes on for the others, or stops if there are none left.
func (g *buildGroup) do(ctx context.Context, key manifestKey, run func(context.Context) (*manifestEntry, error)) (*manifestEntry, error) {
	g.mu.Lock()
	b := g.builds[key]
	if b == nil {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxBuildTime)
		b = &build{done: make(chan struct{}), cancel: cancel}
		g.builds[key] = b
		go g.run(bctx, key, b, run)
	}
	b.waiters++
	g.mu.Unlock()
	g.waiting.Inc()
	defer g.waiting.Dec()

	select {
	case <-b.done:
		return b.entry, b.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	if b.waiters--; b.waiters == 0 {
		// Nobody wants it any more: stop it, and let the next requester
		// start afresh rather than join a build that is winding down.
		b.cancel()
		if g.builds[key] == b {
			delete(g.builds, key)
		}
	}
	g.mu.Unlock()
	return nil, ctx.Err()
}

func (g *buildGroup) run(ctx context.Context, key manifestKey, b *build, run func(context.Context) (*manifestEntry, error)) {
	defer func() {
		b.cancel()
		g.mu.Lock()
		if g.builds[key] == b {
			delete(g.builds, key)
		}
		g.mu.Unlock()
		close(b.done)
	}()
	b.entry, b.err = run(ctx)
}

// serveBuild runs the handler chain for a build, turning its panics into
// errors: the build has its own goroutine, where a panic would end the
// process. reverse_proxy panics with http.ErrAbortHandler when our writer
// refused the rest of a body (stoppedByUs: no error), when the build was
// cancelled (errBuildAbandoned) or when its upstream broke off mid-body;
// none of these is a bug, so none is logged with a stack.
func serveBuild(ctx context.Context, logger *zap.Logger, serve func(), stoppedByUs func() bool) (err error) {
	defer func() {
		v := recover()
		switch {
		case v == nil:
		case v == http.ErrAbortHandler && stoppedByUs():
			err = nil
		case v == http.ErrAbortHandler && ctx.Err() != nil:
			err = buildContextError(ctx)
		case v == http.ErrAbortHandler:
			err = refuse(http.StatusBadGateway, "the origin broke off its response")
		default:
			logger.Error("manifest build: the handler chain panicked", zap.Any("panic", v), zap.Stack("stack"))
			err = refuse(http.StatusInternalServerError, "the handler chain failed")
		}
	}()
	serve()
	return nil
}

// buildLimiter hands out the slots of builds that read and hash a body,
// maxHashingBuilds at once, and counts each client address's builds
// hashing or waiting for a slot.
type buildLimiter struct {
	slots  chan struct{}
	gauges *prometheus.GaugeVec // by state: hashing, queued

	mu      sync.Mutex
	perAddr map[string]int
}

func newBuildLimiter(gauges *prometheus.GaugeVec) *buildLimiter {
	return &buildLimiter{slots: make(chan struct{}, maxHashingBuilds), gauges: gauges, perAddr: make(map[string]int)}
}

// acquire waits for a hashing slot for a build that addr started, while
// ctx lasts. It refuses with 429 when addr has maxBuildsPerAddress builds
// hashing or waiting already. release gives the slot back.
func (l *buildLimiter) acquire(ctx context.Context, addr string) (release func(), err error) {
	l.mu.Lock()
	if l.perAddr[addr] >= maxBuildsPerAddress {
		l.mu.Unlock()
		return nil, refuse(http.StatusTooManyRequests,
			"too many manifest builds from your address at once (at most %d); try again shortly", maxBuildsPerAddress)
	}
	l.perAddr[addr]++
	l.mu.Unlock()
	queued := l.gauges.WithLabelValues("queued")
	queued.Inc()
	select {
	case l.slots <- struct{}{}:
		queued.Dec()
	case <-ctx.Done():
		queued.Dec()
		l.leave(addr)
		return nil, ctx.Err()
	}
	hashing := l.gauges.WithLabelValues("hashing")
	hashing.Inc()
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.slots
			hashing.Dec()
			l.leave(addr)
		})
	}, nil
}

func (l *buildLimiter) leave(addr string) {
	l.mu.Lock()
	if l.perAddr[addr]--; l.perAddr[addr] <= 0 {
		delete(l.perAddr, addr)
	}
	l.mu.Unlock()
}
