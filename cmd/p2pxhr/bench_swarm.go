package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

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
	wrong     int64    // bytes written that differ from the origin's (with a reference copy)
	ids       []string // its peer ids at the coordinator, for telling bans apart
	copy      *memFile // a finished download, hashed once the phase's clock has stopped
}

// phaseResult is one phase (P2P or HTTP only) of one N.
type phaseResult struct {
	outcomes    []peerOutcome
	originBytes int64 // counted at the module
	wall        time.Duration
	ranges      *rangeLog // P2P phase: the peers' HTTP range requests
	probe       float64   // P2P phase: seconds one more peer took from the finished swarm (0: not run)
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

// visitorIP is the address honest visitor i connects to the coordinator
// from: 127.0.(i+1).1, a network (/24) of its own, as visitors of a real
// site come from many networks and the coordinator counts reports by
// network. Attackers take 127.1.x.1 (attackerIP).
func visitorIP(i int) net.IP { return net.IPv4(127, 0, byte(1+i), 1) }

// coordClientFrom is a coordinator client that connects from ip.
func coordClientFrom(site string, ip net.IP) (*peer.CoordClient, error) {
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext}
	return peer.NewCoordClient(site, peer.CoordOptions{Dialer: d})
}

// runP2PPhase runs n Go peers, each with its own Client and coordinator
// connection, against a fresh site. With ref (the origin's bytes) every
// write is compared with it and wrong bytes are counted.
func runP2PPhase(ctx context.Context, site *benchSite, cfg benchConfig, name string, n int, want [sha256.Size]byte, ref []byte, prog *benchProgress) (phaseResult, error) {
	plan := churnPlan(n, cfg.churn, cfg.randSeed)
	res := phaseResult{outcomes: make([]peerOutcome, n), ranges: newRangeLog()}
	prog.startPhase(name, n, int64(n)*cfg.size)
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
			if err := waitArrival(ctx, start.Add(cfg.arrivalAt(i, n))); err != nil {
				o.err = err
				counted()
				return
			}
			benchPeer(ctx, seedCtx, site, cfg, i, o, frac, want, ref, prog, res.ranges, counted)
		}()
	}
	finishing.Wait()
	res.wall = time.Since(start)
	for i := range res.outcomes {
		if o := &res.outcomes[i]; o.copy != nil {
			if o.verified = sha256.Sum256(o.copy.bytes()) == want; !o.verified {
				o.err = fmt.Errorf("copy differs from the origin's bytes")
			}
			o.copy = nil // the seeder holds it until the phase ends, no longer
		}
	}
	// The phase's origin bytes, before the probe adds its own.
	var err error
	res.originBytes, err = site.settledOriginBytes(ctx)
	if err == nil {
		res.probe = probeSwarm(ctx, site, cfg, want)
	}
	allDone()
	all.Wait()
	return res, err
}

// benchPeer is one visitor: arrive, download (or leave at leaveAt of the
// file when churning), check the copy, seed until seedCtx ends if asked.
// counted is called once the peer's completion is known.
func benchPeer(ctx, seedCtx context.Context, site *benchSite, cfg benchConfig, i int, o *peerOutcome,
	leaveAt float64, want [sha256.Size]byte, ref []byte, prog *benchProgress, ranges *rangeLog, counted func()) {
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hc := ownHTTPClient()
	tr := hc.Transport.(*http.Transport)
	defer tr.CloseIdleConnections() // the logging wrapper does not pass it on
	hc.Transport = ranges.wrap(tr, "/files/demo.bin")
	cc, err := coordClientFrom(site.base, visitorIP(i))
	if err != nil {
		o.err = err
		counted()
		return
	}
	defer func() { o.ids = appendID(o.ids, cc.ID()) }()
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
	buf.ref = ref
	defer func() { o.wrong = buf.wrong.Load() }()
	t0 := time.Now()
	r, err := c.Download(dctx, site.fileURL(), buf)
	o.seconds = time.Since(t0).Seconds()
	o.fromHTTP, o.fromPeers = r.BytesFromHTTP, r.BytesFromPeers
	o.ids = appendID(o.ids, cc.ID())
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
	// Hashing the copy here would take CPU from the peers still downloading
	// in this process: runP2PPhase does it once the phase's clock stops.
	// Seeding needs no verdict first: Seed checks every block it serves.
	o.copy = buf
	prog.peerDone(false)
	counted()
	if cfg.seedAfter {
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
			if o.err = waitArrival(ctx, start.Add(cfg.arrivalAt(i, n))); o.err != nil {
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

// appendID adds a coordinator peer id to ids unless empty or known.
func appendID(ids []string, id string) []string {
	if id == "" || slices.Contains(ids, id) {
		return ids
	}
	return append(ids, id)
}

// memFile is a peer's copy in memory: written by the download, read when
// serving others. Blocks are written once and served only once verified,
// but the lock keeps the race detector's view simple and costs a memcpy.
// With ref set, every byte written is compared with the origin's and the
// differing ones counted: nobody may ever receive a wrong byte.
type memFile struct {
	mu    sync.RWMutex
	b     []byte
	ref   []byte
	wrong atomic.Int64
}

func newMemFile(size int64) *memFile { return &memFile{b: make([]byte, size)} }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("memFile: write [%d, %d) outside %d bytes", off, off+int64(len(p)), len(m.b))
	}
	if m.ref != nil && !bytes.Equal(p, m.ref[off:off+int64(len(p))]) {
		var bad int64
		for k, c := range p {
			if m.ref[off+int64(k)] != c {
				bad++
			}
		}
		m.wrong.Add(bad)
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
