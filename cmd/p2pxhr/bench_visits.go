package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/p2pxhr/p2pxhr/peer"
)

// The visits scenario (--visits): visitors arrive one at a time, --every
// apart, so their downloads rarely overlap; each downloads the file and
// stays on the site for --stay. With persistence a visitor seeds the file
// from its cache for that stay, as the browser's seeding tab does; without,
// it seeds only while its download runs (it leaves the downloading page
// for another at once). Go peers play the visitors: what the scenario does
// not model is the browser's side of persistence (reading blocks back from
// OPFS, the seeding tab changing on each page load, upload limits, consent).

// visitConfig is the visits scenario's flags, checked.
type visitConfig struct {
	n       int
	every   time.Duration
	stay    time.Duration
	persist []bool
}

func visitFlags(fs *pflag.FlagSet) {
	fs.Int("visits", 0, "non-overlapping visits: this many visitors, one every --every, each on the site --stay after its download (0: off)")
	fs.Duration("every", 30*time.Second, "with --visits: time between two arrivals")
	fs.Duration("stay", 5*time.Minute, "with --visits: time a visitor stays on the site after its download")
	fs.String("persist", "both", "with --visits: on (visitors seed from their cache while they stay), off (only while downloading), or both")
}

func parseVisitFlags(fs *pflag.FlagSet, cfg *benchConfig) error {
	v := &cfg.visits
	v.n, _ = fs.GetInt("visits")
	v.every, _ = fs.GetDuration("every")
	v.stay, _ = fs.GetDuration("stay")
	p, _ := fs.GetString("persist")
	switch p {
	case "both":
		v.persist = []bool{true, false}
	case "on":
		v.persist = []bool{true}
	case "off":
		v.persist = []bool{false}
	default:
		return usageError{fmt.Errorf("--persist %q: want on, off or both", p)}
	}
	if v.n == 0 {
		return nil
	}
	// At most stay/every+1 visitors hold a copy at once.
	holders := min(int64(v.n), int64(v.stay/max(v.every, time.Millisecond))+2)
	switch {
	case v.n < 1 || v.n > maxBenchPeers:
		return usageError{fmt.Errorf("--visits %d: want 1 to %d", v.n, maxBenchPeers)}
	case v.every <= 0 || v.every > time.Hour, v.stay < 0 || v.stay > 24*time.Hour:
		return usageError{fmt.Errorf("--every %s, --stay %s: want an interval up to 1h and a stay up to 24h", v.every, v.stay)}
	case holders*cfg.size > maxBenchMemory:
		return usageError{fmt.Errorf("%d visitors on the site at once × --size %s is over the %s the bench may hold in memory",
			holders, humanize.IBytes(uint64(cfg.size)), humanize.IBytes(maxBenchMemory))}
	}
	return nil
}

// visitResult is one phase of the scenario; its JSON is --json's output.
type visitResult struct {
	Scenario     string  `json:"scenario"`
	Persist      bool    `json:"persist"`
	Visits       int     `json:"visits"`
	EverySeconds float64 `json:"everySeconds"`
	StaySeconds  float64 `json:"staySeconds"`
	Size         int64   `json:"size"`
	BlockSize    int64   `json:"blockSize"`
	OriginRate   int64   `json:"originRate"`
	// Offload is 1 − originBytes/deliveredBytes; Limit (N−1)/N.
	Offload        float64 `json:"offload"`
	Limit          float64 `json:"limit"`
	OriginBytes    int64   `json:"originBytes"`
	DeliveredBytes int64   `json:"deliveredBytes"`
	PeerBytes      int64   `json:"peerBytes"`
	// SeedersAtArrival is how many seeders the coordinator counted when
	// each visitor arrived.
	SeedersAtArrival []int     `json:"seedersAtArrival"`
	Seconds          []float64 `json:"seconds"`
	MeanSeconds      float64   `json:"meanSeconds"`
	P95Seconds       float64   `json:"p95Seconds"`
	WallSeconds      float64   `json:"wallSeconds"`
	Verified         bool      `json:"verified"`
	Failure          string    `json:"failure,omitempty"`
}

// benchVisits runs the scenario's phases, each on a fresh site.
func benchVisits(ctx context.Context, cfg benchConfig, stdout, stderr io.Writer) error {
	prog := newBenchProgress(stderr)
	defer prog.finish()
	v := cfg.visits
	if !cfg.json {
		fmt.Fprintf(stdout, "Non-overlapping visits: %d visitors, one every %s, each on the site %s after its download;\n",
			v.n, v.every, v.stay)
		fmt.Fprintf(stdout, "%s file in %s blocks, origin capped at %s/s. Offload = 1 - origin bytes / bytes delivered (at most %.2f).\n\n",
			humanize.IBytes(uint64(cfg.size)), humanize.IBytes(uint64(cfg.blockSize)), humanize.Bytes(uint64(cfg.originRate)), float64(v.n-1)/float64(v.n))
		fmt.Fprintf(stdout, "%-24s %8s %12s %10s %22s %10s\n", "phase", "offload", "origin", "from peers", "seeders at arrival", "mean/p95")
	}
	var failed error
	for _, persist := range v.persist {
		site, err := startBenchSite(ctx, cfg)
		if err != nil {
			return err
		}
		want, err := site.originSum(ctx, cfg.size)
		if err != nil {
			site.stop()
			return fmt.Errorf("reference hash: %w", err)
		}
		r, err := runVisits(ctx, site, cfg, persist, want, prog)
		site.stop()
		if err != nil {
			return err
		}
		prog.pause()
		if cfg.json {
			b, _ := json.Marshal(r)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			name := "without persistence"
			if persist {
				name = "with persistence"
			}
			fmt.Fprintf(stdout, "%-24s %8.3f %12s %10s %22s %4.1fs/%4.1fs\n", name, r.Offload, humanize.IBytes(uint64(r.OriginBytes)),
				humanize.IBytes(uint64(r.PeerBytes)), seederSummary(r.SeedersAtArrival), r.MeanSeconds, r.P95Seconds)
		}
		if !r.Verified && failed == nil {
			failed = fmt.Errorf("visits: %s", r.Failure)
		}
	}
	prog.finish()
	return failed
}

func seederSummary(s []int) string {
	if len(s) == 0 {
		return "-"
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return fmt.Sprintf("median %d, max %d", c[len(c)/2], c[len(c)-1])
}

// visitOutcome is one visitor.
type visitOutcome struct {
	seconds             float64
	fromHTTP, fromPeers int64
	seeders             int
	err                 error
}

// runVisits runs one phase: arrivals --every apart; the phase ends when
// the last download ends (stays still running are cut short: nobody is
// left to serve).
func runVisits(ctx context.Context, site *benchSite, cfg benchConfig, persist bool, want [sha256.Size]byte, prog *benchProgress) (visitResult, error) {
	v := cfg.visits
	name := "visits, without persistence"
	if persist {
		name = "visits, with persistence"
	}
	prog.startPhase(name, v.n, int64(v.n)*cfg.size)
	out := make([]visitOutcome, v.n)
	stayCtx, endStays := context.WithCancel(ctx)
	defer endStays()
	var downloads, all sync.WaitGroup
	start := time.Now()
	for i := range v.n {
		downloads.Add(1)
		all.Add(1)
		go func() {
			defer all.Done()
			o := &out[i]
			if o.err = waitArrival(ctx, start.Add(time.Duration(i)*v.every)); o.err != nil {
				downloads.Done()
				return
			}
			o.seeders, _ = site.seeders(ctx)
			visit(ctx, stayCtx, site, cfg, persist, o, want, prog, downloads.Done)
		}()
	}
	downloads.Wait()
	wall := time.Since(start)
	endStays()
	all.Wait()
	origin, err := site.settledOriginBytes(ctx)
	if err != nil {
		return visitResult{}, err
	}
	r := visitResult{Scenario: "visits", Persist: persist, Visits: v.n, EverySeconds: v.every.Seconds(), StaySeconds: v.stay.Seconds(),
		Size: cfg.size, BlockSize: cfg.blockSize, OriginRate: cfg.originRate, Limit: float64(v.n-1) / float64(v.n),
		OriginBytes: origin, DeliveredBytes: int64(v.n) * cfg.size, WallSeconds: wall.Seconds(), Verified: true}
	for i, o := range out {
		r.SeedersAtArrival = append(r.SeedersAtArrival, o.seeders)
		r.PeerBytes += o.fromPeers
		if o.err != nil {
			r.Verified = false
			r.Failure = fmt.Sprintf("visitor %d: %v", i, o.err)
			continue
		}
		r.Seconds = append(r.Seconds, o.seconds)
	}
	r.Offload = 1 - float64(r.OriginBytes)/float64(r.DeliveredBytes)
	r.MeanSeconds, _, r.P95Seconds = timeStats(r.Seconds)
	return r, ctx.Err()
}

// visit is one visitor: download, check, then (with persistence) seed the
// copy for the stay, or until stayCtx ends.
func visit(ctx, stayCtx context.Context, site *benchSite, cfg benchConfig, persist bool, o *visitOutcome,
	want [sha256.Size]byte, prog *benchProgress, downloaded func()) {
	done := sync.OnceFunc(downloaded)
	defer done()
	hc := ownHTTPClient()
	defer hc.CloseIdleConnections()
	cc, err := peer.NewCoordClient(site.base, peer.CoordOptions{})
	if err != nil {
		o.err = err
		return
	}
	var mu sync.Mutex
	var last int64
	c, err := peer.New(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Loopback: true}, HTTPClient: hc,
		Progress: func(p peer.Progress) {
			mu.Lock()
			prog.addLoaded(p.Loaded - last)
			last = p.Loaded
			mu.Unlock()
		}})
	if err != nil {
		cc.Close()
		o.err = err
		return
	}
	defer c.Close()
	buf := newMemFile(cfg.size)
	t0 := time.Now()
	r, err := c.Download(ctx, site.fileURL(), buf)
	o.seconds, o.fromHTTP, o.fromPeers = time.Since(t0).Seconds(), r.BytesFromHTTP, r.BytesFromPeers
	if err == nil && sha256.Sum256(buf.bytes()) != want {
		err = fmt.Errorf("copy differs from the origin's bytes")
	}
	o.err = err
	prog.peerDone(false)
	done()
	if err != nil || !persist {
		return
	}
	sctx, cancel := context.WithTimeout(stayCtx, cfg.visits.stay)
	defer cancel()
	_ = c.Seed(sctx, site.fileURL(), buf)
}

// seeders reads how many seeders the coordinator counts now.
func (s *benchSite) seeders(ctx context.Context) (int, error) {
	var st struct {
		Swarm struct {
			Seeding struct {
				Peers int `json:"peers"`
			} `json:"seeding"`
		} `json:"swarm"`
	}
	err := s.stats(ctx, &st)
	return st.Swarm.Seeding.Peers, err
}
