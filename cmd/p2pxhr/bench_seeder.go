package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/p2pxhr/p2pxhr/peer"
)

// seederResult is what --from-seeder measures: one visitor alone with one
// Go seeder that holds the whole file, first a Go peer, then a Chromium
// tab, so the browser client's throughput is judged against the Go peer's
// on the same machine in the same run.
type seederResult struct {
	Size          int64  `json:"size"`
	BlockSize     int64  `json:"blockSize"`
	OriginRate    int64  `json:"originRate"`
	OffloadPolicy string `json:"offloadPolicy"`

	GoSeconds        float64 `json:"goSeconds"`
	GoMBps           float64 `json:"goMBps"`
	GoFromPeers      int64   `json:"goFromPeers"`
	GoFromHTTP       int64   `json:"goFromHttp"`
	BrowserSeconds   float64 `json:"browserSeconds"`
	BrowserMBps      float64 `json:"browserMBps"`
	BrowserFromPeers int64   `json:"browserFromPeers"`
	// BrowserFromHTTP counts the origin's bytes, blocks the tab fetched
	// again because Chromium could not read them back included.
	BrowserFromHTTP int64 `json:"browserFromHttp"`
	// Ratio is the browser's throughput over the Go peer's.
	Ratio float64 `json:"ratio"`

	// The browser's memory (RSS of its process tree): with the bench page
	// open and idle, the most seen while downloading and hashing, and once
	// done with the file still held.
	BrowserRSSIdle  int64 `json:"browserRssIdle"`
	BrowserRSSPeak  int64 `json:"browserRssPeak"`
	BrowserRSSAfter int64 `json:"browserRssAfter"`

	Verified bool   `json:"verified"`
	Failure  string `json:"failure,omitempty"`
}

// benchFromSeeder runs --from-seeder. The origin stays capped and the
// server loaded (offload always unless --offload says otherwise), so the
// seeder carries the file.
func benchFromSeeder(ctx context.Context, cfg benchConfig, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.offload == "" {
		cfg.offload = "always"
	}
	site, err := startBenchSite(ctx, cfg)
	if err != nil {
		return err
	}
	defer site.stop()
	file, want, err := site.originCopy(ctx, cfg.size)
	if err != nil {
		return fmt.Errorf("origin copy: %w", err)
	}
	r := seederResult{Size: cfg.size, BlockSize: cfg.blockSize, OriginRate: cfg.originRate, OffloadPolicy: cfg.offload}
	seedCtx, stopSeeding := context.WithCancel(ctx)
	defer stopSeeding()
	seeded := make(chan error, 1)
	go func() { seeded <- seedFrom(seedCtx, site, file) }()
	if err := site.waitMembers(ctx, 1); err != nil {
		return fmt.Errorf("seeder: %w", err)
	}
	var errs []error

	fmt.Fprintln(stderr, "one Go peer downloading from the seeder…")
	goRes, err := goDownload(ctx, site, cfg, want)
	if err != nil {
		errs = append(errs, fmt.Errorf("Go peer: %w", err))
	}
	r.GoSeconds, r.GoFromPeers, r.GoFromHTTP = goRes.seconds, goRes.fromPeers, goRes.fromHTTP
	// Its leaving reaches the coordinator before the tab joins.
	if err := site.waitMembers(ctx, 1); err != nil {
		return err
	}

	fmt.Fprintln(stderr, "one Chromium tab downloading from the seeder…")
	b, err := launchBenchBrowser(ctx, cfg.chromium)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.navigate(ctx, site.base+benchPagePath); err != nil {
		return err
	}
	pid := b.pid()
	r.BrowserRSSIdle = processTreeRSS(pid)
	var peak atomic.Int64
	sampling := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		tickUntil(sampling, 100*time.Millisecond, func() {
			if v := processTreeRSS(pid); v > peak.Load() {
				peak.Store(v)
			}
		})
	}()
	d, err := evalIn[pageDownload](ctx, b, cfg.timeout, benchDownloadJS(site.fileURL(), true))
	close(sampling)
	sampled.Wait()
	r.BrowserRSSAfter = processTreeRSS(pid)
	r.BrowserRSSPeak = max(peak.Load(), r.BrowserRSSAfter)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("browser: %w", err))
	case d.Error != "":
		errs = append(errs, fmt.Errorf("browser: %s", d.Error))
	case d.Size != cfg.size || d.SHA != hex.EncodeToString(want[:]):
		errs = append(errs, fmt.Errorf("browser: copy differs from the origin's bytes"))
	}
	r.BrowserSeconds, r.BrowserFromPeers, r.BrowserFromHTTP = d.Ms/1000, d.FromPeers, d.FromHTTP

	mbps := func(sec float64) float64 {
		if sec <= 0 {
			return 0
		}
		return float64(cfg.size) / sec / 1e6
	}
	r.GoMBps, r.BrowserMBps = mbps(r.GoSeconds), mbps(r.BrowserSeconds)
	if r.GoMBps > 0 {
		r.Ratio = r.BrowserMBps / r.GoMBps
	}
	stopSeeding()
	if err := <-seeded; err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("seeder: %w", err))
	}
	r.Verified = len(errs) == 0
	if err := errors.Join(errs...); err != nil {
		r.Failure = err.Error()
	}
	if cfg.json {
		b, _ := json.Marshal(r)
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printSeederResult(stdout, r)
	}
	if !r.Verified {
		return errors.New(r.Failure)
	}
	return nil
}

func printSeederResult(w io.Writer, r seederResult) {
	fmt.Fprintf(w, "one visitor from one Go seeder: file %s, blocks %s, origin capped at %s/s, offload %s\n\n",
		formatBytes(r.Size), formatBytes(r.BlockSize), humanize.Bytes(uint64(r.OriginRate)), r.OffloadPolicy)
	fmt.Fprintf(w, "%-16s %9s %10s %14s %14s\n", "visitor", "seconds", "MB/s", "from peers", "from HTTP")
	fmt.Fprintf(w, "%-16s %8.2fs %10.1f %14s %14s\n", "Go peer", r.GoSeconds, r.GoMBps, formatBytes(r.GoFromPeers), formatBytes(r.GoFromHTTP))
	fmt.Fprintf(w, "%-16s %8.2fs %10.1f %14s %14s\n", "Chromium tab", r.BrowserSeconds, r.BrowserMBps, formatBytes(r.BrowserFromPeers), formatBytes(r.BrowserFromHTTP))
	fmt.Fprintf(w, "\nbrowser / Go throughput: %.2f\n", r.Ratio)
	fmt.Fprintf(w, "browser memory (RSS of its processes): idle %s, peak %s, after %s (peak − idle %s)\n",
		formatBytes(r.BrowserRSSIdle), formatBytes(r.BrowserRSSPeak), formatBytes(r.BrowserRSSAfter),
		formatBytes(r.BrowserRSSPeak-r.BrowserRSSIdle))
	if r.Failure != "" {
		fmt.Fprintf(w, "FAILED: %s\n", r.Failure)
	}
}

// seedFrom seeds file on the site's swarm as a Go peer until ctx ends.
func seedFrom(ctx context.Context, site *benchSite, file *memFile) error {
	cc, err := peer.NewCoordClient(site.base, peer.CoordOptions{})
	if err != nil {
		return err
	}
	c, err := peer.New(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Loopback: true}})
	if err != nil {
		cc.Close()
		return err
	}
	defer c.Close()
	return c.Seed(ctx, site.fileURL(), file)
}

// goDownload is one Go peer downloading the file, checked and timed.
func goDownload(ctx context.Context, site *benchSite, cfg benchConfig, want [sha256.Size]byte) (peerOutcome, error) {
	var o peerOutcome
	cc, err := peer.NewCoordClient(site.base, peer.CoordOptions{})
	if err != nil {
		return o, err
	}
	c, err := peer.New(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Loopback: true}, HTTPClient: ownHTTPClient()})
	if err != nil {
		cc.Close()
		return o, err
	}
	defer c.Close()
	buf := newMemFile(cfg.size)
	t0 := time.Now()
	res, err := c.Download(ctx, site.fileURL(), buf)
	o.seconds = time.Since(t0).Seconds()
	o.fromHTTP, o.fromPeers = res.BytesFromHTTP, res.BytesFromPeers
	if err != nil {
		return o, err
	}
	if sha256.Sum256(buf.bytes()) != want {
		return o, errors.New("copy differs from the origin's bytes")
	}
	return o, nil
}

// originCopy fetches the file around the module into memory, with its
// SHA-256.
func (s *benchSite) originCopy(ctx context.Context, size int64) (*memFile, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/origin/demo.bin", nil)
	if err != nil {
		return nil, sum, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, sum, err
	}
	defer resp.Body.Close()
	f := newMemFile(size)
	if n, err := io.ReadFull(resp.Body, f.b); err != nil {
		return nil, sum, fmt.Errorf("read %d of %d bytes: %w", n, size, err)
	}
	return f, sha256.Sum256(f.b), nil
}

// waitMembers waits until the site's coordinator counts exactly n swarm
// members.
func (s *benchSite) waitMembers(ctx context.Context, n int) error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		members, err := s.swarmMembers(ctx)
		if err == nil && members == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swarm members: %d, want %d (%v)", members, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
