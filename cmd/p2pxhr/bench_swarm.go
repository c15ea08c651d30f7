package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/p2pxhr/p2pxhr/peer"
)

// peerOutcome is one download of a phase.
type peerOutcome struct {
	seconds   float64 // from arrival to the whole file
	churned   bool    // left on purpose: not a completion
	err       error
	verified  bool
	fromHTTP  int64 // verified bytes by source, as the peer counts them
	fromPeers int64
}

// phaseResult is one phase (P2P or HTTP only) of one N.
type phaseResult struct {
	outcomes    []peerOutcome
	originBytes int64 // counted at the module
	wall        time.Duration
	ranges      *rangeLog // P2P phase: the peers' HTTP range requests
}

// arrivalOffset spreads n arrivals evenly over window, first at 0 and last
// at window, so runs are repeatable.
func arrivalOffset(i, n int, window time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return window * time.Duration(i) / time.Duration(n-1)
}

// churnPlan picks which peers leave mid-way and at what fraction of the
// file, from a seeded generator so a run can be repeated. At least one
// peer always stays.
func churnPlan(n int, fraction float64, seed int64) map[int]float64 {
	k := min(int(fraction*float64(n)+0.5), n-1)
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(n)))
	plan := map[int]float64{}
	for _, i := range rng.Perm(n)[:k] {
		plan[i] = 0.1 + 0.8*rng.Float64()
	}
	return plan
}

// waitArrival sleeps until the peer's arrival time.
func waitArrival(ctx context.Context, at time.Time) error {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ownHTTPClient gives each simulated visitor its own connections, as
// separate browsers would have.
func ownHTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// runP2PPhase runs n Go peers, each with its own Client and coordinator
// connection, against a fresh site.
func runP2PPhase(ctx context.Context, site *benchSite, cfg benchConfig, n int, want [sha256.Size]byte, prog *benchProgress) (phaseResult, error) {
	plan := churnPlan(n, cfg.churn, cfg.randSeed)
	res := phaseResult{outcomes: make([]peerOutcome, n), ranges: newRangeLog()}
	prog.startPhase("P2P", n, int64(n)*cfg.size)
	// Seeders stay until every peer that means to finish has finished.
	seedCtx, allDone := context.WithCancel(ctx)
	defer allDone()
	var finishing, all sync.WaitGroup
	start := time.Now()
	for i := range n {
		frac, churner := plan[i]
		if !churner {
			finishing.Add(1)
		}
		all.Add(1)
		go func() {
			defer all.Done()
			o := &res.outcomes[i]
			o.churned = churner
			counted := func() {
				if !churner {
					finishing.Done()
				}
			}
			if err := waitArrival(ctx, start.Add(arrivalOffset(i, n, cfg.arrivals))); err != nil {
				o.err = err
				counted()
				return
			}
			benchPeer(ctx, seedCtx, site, cfg, o, frac, want, prog, res.ranges, counted)
		}()
	}
	finishing.Wait()
	allDone()
	all.Wait()
	res.wall = time.Since(start)
	var err error
	res.originBytes, err = site.settledOriginBytes(ctx)
	return res, err
}

// benchPeer is one visitor: arrive, download (or leave at leaveAt of the
// file when churning), check the copy, seed until seedCtx ends if asked.
// counted is called once the peer's completion is known.
func benchPeer(ctx, seedCtx context.Context, site *benchSite, cfg benchConfig, o *peerOutcome,
	leaveAt float64, want [sha256.Size]byte, prog *benchProgress, ranges *rangeLog, counted func()) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := ownHTTPClient()
	tr := hc.Transport.(*http.Transport)
	defer tr.CloseIdleConnections() // the logging wrapper does not pass it on
	hc.Transport = ranges.wrap(tr, "/files/demo.bin")
	cc, err := peer.NewCoordClient(site.base, peer.CoordOptions{})
	if err != nil {
		o.err = err
		counted()
		return
	}
	var last int64 // Progress is called from one goroutine at a time per download
	var lastMu sync.Mutex
	c, err := peer.New(peer.Options{
		Signaller:  cc,
		RTC:        peer.RTCConfig{Loopback: true},
		HTTPClient: hc,
		Progress: func(p peer.Progress) {
			lastMu.Lock()
			prog.addLoaded(p.Loaded - last)
			last = p.Loaded
			lastMu.Unlock()
			if o.churned && float64(p.Loaded) >= leaveAt*float64(p.Total) {
				cancel()
			}
		},
	})
	if err != nil {
		cc.Close()
		o.err = err
		counted()
		return
	}
	defer c.Close()
	buf := newMemFile(cfg.size)
	t0 := time.Now()
	r, err := c.Download(dctx, site.fileURL(), buf)
	o.seconds = time.Since(t0).Seconds()
	o.fromHTTP, o.fromPeers = r.BytesFromHTTP, r.BytesFromPeers
	if o.churned {
		// Leaving is the point; whatever Download said, this peer is gone.
		prog.peerDone(true)
		counted()
		return
	}
	if err != nil {
		o.err = err
		prog.peerDone(false)
		counted()
		return
	}
	o.verified = sha256.Sum256(buf.bytes()) == want
	if !o.verified {
		o.err = fmt.Errorf("copy differs from the origin's bytes")
	}
	prog.peerDone(false)
	counted()
	if cfg.seedAfter && o.verified {
		// Download leaves its swarm on return; Seed joins it again with
		// the whole copy (Client offers no way to stay in between).
		_ = c.Seed(seedCtx, site.fileURL(), buf)
	}
}

// runHTTPPhase runs the same arrivals as plain GETs (no Range, no peer
// code) against a fresh site under the same cap; the same visitors leave
// at the same fraction of the file, so both phases carry the same load.
func runHTTPPhase(ctx context.Context, site *benchSite, cfg benchConfig, n int, want [sha256.Size]byte, prog *benchProgress) (phaseResult, error) {
	plan := churnPlan(n, cfg.churn, cfg.randSeed)
	res := phaseResult{outcomes: make([]peerOutcome, n)}
	prog.startPhase("HTTP only", n, int64(n)*cfg.size)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &res.outcomes[i]
			if o.err = waitArrival(ctx, start.Add(arrivalOffset(i, n, cfg.arrivals))); o.err != nil {
				return
			}
			stopAt := int64(-1)
			if frac, ok := plan[i]; ok {
				o.churned, stopAt = true, int64(frac*float64(cfg.size))
			}
			t0 := time.Now()
			o.fromHTTP, o.verified, o.err = plainDownload(ctx, site.fileURL(), want, stopAt, prog)
			o.seconds = time.Since(t0).Seconds()
			prog.peerDone(o.churned)
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	var err error
	res.originBytes, err = site.settledOriginBytes(ctx)
	return res, err
}

// plainDownload GETs url whole, hashing as it reads: what a browser
// without P2PXHR does. With stopAt ≥ 0 it hangs up after that many bytes.
func plainDownload(ctx context.Context, url string, want [sha256.Size]byte, stopAt int64, prog *benchProgress) (int64, bool, error) {
	hc := ownHTTPClient()
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	h := sha256.New()
	var body io.Reader = resp.Body
	if stopAt >= 0 {
		body = io.LimitReader(resp.Body, stopAt)
	}
	n, err := io.Copy(io.MultiWriter(h, progressWriter{prog}), body)
	if err != nil || stopAt >= 0 {
		return n, false, err
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	if sum != want {
		return n, false, fmt.Errorf("GET %s: body differs from the origin's bytes", url)
	}
	return n, true, nil
}

type progressWriter struct{ p *benchProgress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.addLoaded(int64(len(b)))
	return len(b), nil
}

// memFile is a peer's copy in memory: written by the download, read when
// serving others. Blocks are written once and served only once verified,
// but the lock keeps the race detector's view simple and costs a memcpy.
type memFile struct {
	mu sync.RWMutex
	b  []byte
}

func newMemFile(size int64) *memFile { return &memFile{b: make([]byte, size)} }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("memFile: write [%d, %d) outside %d bytes", off, off+int64(len(p)), len(m.b))
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off < 0 || off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.b
}
