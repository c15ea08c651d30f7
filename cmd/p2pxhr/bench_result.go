package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// benchResult is one N's figures; its JSON is bench --json's output.
type benchResult struct {
	Peers int `json:"peers"`
	// Browsers: the peers were headless Chromium processes (--browsers).
	Browsers        bool    `json:"browsers,omitempty"`
	Size            int64   `json:"size"`
	BlockSize       int64   `json:"blockSize"`
	OriginRate      int64   `json:"originRate"`
	OffloadPolicy   string  `json:"offloadPolicy,omitempty"`
	ArrivalsSeconds float64 `json:"arrivalsSeconds"`
	SeedAfter       bool    `json:"seedAfter"`
	Churn           float64 `json:"churn"`
	Churned         int     `json:"churned"`
	Poisson         bool    `json:"poisson,omitempty"`
	// Busy is how many cores other processes kept busy (--busy);
	// LoadAverage the machine's 1-minute load average when the P2P phase
	// started and when the HTTP phase ended.
	Busy        int        `json:"busy,omitempty"`
	LoadAverage [2]float64 `json:"loadAverage"`

	// Offload is 1 − originBytes/deliveredBytes, both of the P2P phase,
	// the origin's counted at the module; Limit is (N−1)/N, since the
	// origin must serve every byte at least once.
	Offload        float64 `json:"offload"`
	Limit          float64 `json:"limit"`
	OriginBytes    int64   `json:"originBytes"`
	DeliveredBytes int64   `json:"deliveredBytes"`
	// HTTPOriginBytes is the HTTP-only phase's count: N×size when sound
	// (less what leavers did not read, with --churn).
	HTTPOriginBytes int64 `json:"httpOriginBytes"`
	// PeerBytes is what the peers say came from peers (client-side).
	PeerBytes int64 `json:"peerBytes"`
	// RangeRequests counts the P2P peers' HTTP range requests for the
	// file; BlockHTTPCopies maps k to the number of blocks requested k
	// times over HTTP (k > 1: the origin sent those bytes k times).
	RangeRequests   int            `json:"rangeRequests"`
	BlockHTTPCopies map[string]int `json:"blockHttpCopies"`
	// RangeGapSeconds is the longest pause between two of those requests
	// and RangeGapAtSeconds when it began (from the start of the phase).
	RangeGapSeconds   float64 `json:"rangeGapSeconds"`
	RangeGapAtSeconds float64 `json:"rangeGapAtSeconds"`

	P2PMeanSeconds  float64 `json:"p2pMeanSeconds"`
	P2PP50Seconds   float64 `json:"p2pP50Seconds"`
	P2PP95Seconds   float64 `json:"p2pP95Seconds"`
	HTTPMeanSeconds float64 `json:"httpMeanSeconds"`
	HTTPP50Seconds  float64 `json:"httpP50Seconds"`
	HTTPP95Seconds  float64 `json:"httpP95Seconds"`
	// Speedup is httpMean / p2pMean; its inverse is the goal's ratio.
	Speedup float64 `json:"speedup"`
	// FloorSeconds is the swarm floor max(F/C_origin, F/d): no visitor can
	// finish sooner on average than the origin can send one copy, nor than
	// one peer can take the file in (d, measured by ProbeSeconds: one more
	// peer downloading from the finished swarm). FloorRatio is the P2P mean
	// over it.
	ProbeSeconds float64 `json:"probeSeconds,omitempty"`
	FloorSeconds float64 `json:"floorSeconds"`
	FloorRatio   float64 `json:"floorRatio"`

	// Verified: every completing peer's copy and every HTTP body hashed
	// equal to the origin's SHA-256, and no download failed.
	Verified bool   `json:"verified"`
	Failure  string `json:"failure,omitempty"`

	P2PSeconds  []float64 `json:"p2pSeconds"`
	HTTPSeconds []float64 `json:"httpSeconds"`
	P2PWall     float64   `json:"p2pWallSeconds"`
	HTTPWall    float64   `json:"httpWallSeconds"`
}

// benchOne measures one N: reference hash, P2P phase, HTTP-only phase,
// each P2P and HTTP phase on a freshly loaded config.
func benchOne(ctx context.Context, cfg benchConfig, n int, prog *benchProgress) (benchResult, error) {
	site, err := startBenchSite(ctx, cfg)
	if err != nil {
		return benchResult{}, err
	}
	want, err := site.originSum(ctx, cfg.size)
	if err != nil {
		site.stop()
		return benchResult{}, fmt.Errorf("reference hash: %w", err)
	}
	var browsers []*benchBrowser
	if cfg.browsers {
		if browsers, err = launchBenchBrowsers(ctx, cfg.chromium, n); err != nil {
			site.stop()
			return benchResult{}, err
		}
		defer closeBenchBrowsers(browsers)
	}
	loadStart := loadAverage()
	var p2p phaseResult
	if cfg.browsers {
		p2p, err = runBrowserPhase(ctx, browsers, site, cfg, true, want, prog)
	} else {
		p2p, err = runP2PPhase(ctx, site, cfg, "P2P", n, want, nil, prog)
	}
	site.stop()
	if err != nil {
		return benchResult{}, fmt.Errorf("P2P phase: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return benchResult{}, fmt.Errorf("P2P phase: %w", err)
	}
	var plain phaseResult
	if cfg.skipHTTP {
		r := summarise(cfg, n, p2p, plain)
		r.LoadAverage = [2]float64{loadStart, loadAverage()}
		return r, nil
	}
	if site, err = startBenchSite(ctx, cfg); err != nil {
		return benchResult{}, err
	}
	if cfg.browsers {
		plain, err = runBrowserPhase(ctx, browsers, site, cfg, false, want, prog)
	} else {
		plain, err = runHTTPPhase(ctx, site, cfg, n, want, prog)
	}
	site.stop()
	if err != nil {
		return benchResult{}, fmt.Errorf("HTTP phase: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return benchResult{}, fmt.Errorf("HTTP phase: %w", err)
	}
	r := summarise(cfg, n, p2p, plain)
	r.LoadAverage = [2]float64{loadStart, loadAverage()}
	return r, nil
}

// summarise turns two phases into figures.
func summarise(cfg benchConfig, n int, p2p, plain phaseResult) benchResult {
	r := benchResult{
		Peers: n, Browsers: cfg.browsers, Size: cfg.size, BlockSize: cfg.blockSize, OriginRate: cfg.originRate,
		OffloadPolicy: cfg.offload, ArrivalsSeconds: cfg.arrivals.Seconds(), Poisson: cfg.poisson, Busy: cfg.busy, SeedAfter: cfg.seedAfter, Churn: cfg.churn,
		Limit:       float64(n-1) / float64(n),
		OriginBytes: p2p.originBytes, HTTPOriginBytes: plain.originBytes,
		P2PWall: p2p.wall.Seconds(), HTTPWall: plain.wall.Seconds(),
		P2PSeconds: []float64{}, HTTPSeconds: []float64{},
	}
	if p2p.ranges != nil {
		r.BlockHTTPCopies, r.RangeRequests = p2p.ranges.copies()
		gap, at := p2p.ranges.longestGap()
		r.RangeGapSeconds, r.RangeGapAtSeconds = gap.Seconds(), at.Seconds()
	}
	var errs []error
	for i, o := range p2p.outcomes {
		r.PeerBytes += o.fromPeers
		if o.churned {
			r.Churned++
			// A leaver got what it stored; that much was delivered.
			r.DeliveredBytes += min(o.fromHTTP+o.fromPeers, cfg.size)
			continue
		}
		r.DeliveredBytes += cfg.size
		if o.err != nil || !o.verified {
			errs = append(errs, fmt.Errorf("P2P peer %d: %v", i, o.err))
			continue
		}
		r.P2PSeconds = append(r.P2PSeconds, o.seconds)
	}
	for i, o := range plain.outcomes {
		if o.churned {
			continue
		}
		if o.err != nil || !o.verified {
			errs = append(errs, fmt.Errorf("HTTP download %d: %v", i, o.err))
			continue
		}
		r.HTTPSeconds = append(r.HTTPSeconds, o.seconds)
	}
	if r.DeliveredBytes > 0 {
		r.Offload = 1 - float64(r.OriginBytes)/float64(r.DeliveredBytes)
	}
	r.P2PMeanSeconds, r.P2PP50Seconds, r.P2PP95Seconds = timeStats(r.P2PSeconds)
	r.HTTPMeanSeconds, r.HTTPP50Seconds, r.HTTPP95Seconds = timeStats(r.HTTPSeconds)
	if r.P2PMeanSeconds > 0 {
		r.Speedup = r.HTTPMeanSeconds / r.P2PMeanSeconds
	}
	r.ProbeSeconds = math.Round(p2p.probe*1000) / 1000
	r.FloorSeconds = math.Round(max(float64(cfg.size)/float64(cfg.originRate), p2p.probe)*1000) / 1000
	if r.FloorSeconds > 0 {
		r.FloorRatio = math.Round(r.P2PMeanSeconds/r.FloorSeconds*1000) / 1000
	}
	r.Verified = len(errs) == 0 && len(r.P2PSeconds) == n-r.Churned && (cfg.skipHTTP || len(r.HTTPSeconds) == n-r.Churned)
	if err := errors.Join(errs...); err != nil {
		r.Failure = err.Error()
	}
	return r
}

// timeStats returns the mean, median and 95th percentile (nearest rank)
// of xs, rounded to milliseconds.
func timeStats(xs []float64) (mean, p50, p95 float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := func(q float64) float64 {
		return s[max(0, int(math.Ceil(q*float64(len(s))))-1)]
	}
	ms := func(x float64) float64 { return math.Round(x*1000) / 1000 }
	return ms(sum / float64(len(s))), ms(rank(0.5)), ms(rank(0.95))
}
