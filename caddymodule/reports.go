package caddymodule

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits on client reports. Reports are client-claimed: a page can send
// anything, so each is validated, clamped to what the resource allows and
// rate-limited per client address.
const (
	maxReportBody      = 4 << 10
	maxReportDuration  = 24 * time.Hour
	reportsPerSecond   = 2
	reportBurst        = 20
	maxReportLimiters  = 10000
	durationSampleSize = 4096
)

// downloadReport is what a client sends when a download ends, by beacon
// to POST {prefix}stats.
type downloadReport struct {
	Swarm          string `json:"swarm"`
	Group          string `json:"group"`
	BytesFromHTTP  int64  `json:"bytesFromHttp"`
	BytesFromPeers int64  `json:"bytesFromPeers"`
	BytesUploaded  int64  `json:"bytesUploaded"`
	DurationMs     int64  `json:"durationMs"`
	Outcome        string `json:"outcome"` // ok, error, abort
	// Via is "sw" for a response the service worker answered (one
	// request, often a range of the file), "" for a download.
	Via            string `json:"via,omitempty"`
	BytesFromCache int64  `json:"bytesFromCache,omitempty"`

	size int64 // the resource's, from its manifest
}

var reportOutcomes = []string{"ok", "error", "abort"}

// downloadTotals count finished downloads: how many, how they ended, their
// bytes by source, and the time and throughput of recent successful ones.
type downloadTotals struct {
	Downloads      int64            `json:"downloads"`
	Outcomes       map[string]int64 `json:"outcomes"`
	BytesFromHTTP  int64            `json:"bytesFromHttp"`
	BytesFromPeers int64            `json:"bytesFromPeers"`
	Offload        float64          `json:"offload"`
	Seconds        quantiles        `json:"durationSeconds"`
	Throughput     quantiles        `json:"throughputBytesPerSecond"`

	seconds, throughput []float64 // recent successful downloads
}

// groupTotals is the A/B comparison of one group: all its downloads, and
// the same per size class of the resource, since a median time over a
// 1 MiB picture and a 48 MiB file together compares nothing.
type groupTotals struct {
	downloadTotals
	BytesUploaded int64 `json:"bytesUploaded"`
	// Sizes has the classes with downloads, smallest first.
	Sizes []sizeTotals `json:"sizes"`

	bySize [len(sizeClasses)]*downloadTotals
}

// sizeTotals are the downloads of one size class.
type sizeTotals struct {
	Class string `json:"class"`
	downloadTotals
}

// sizeClasses split resources by size for time comparisons: each class
// holds sizes below its limit (and at least the previous one's).
var sizeClasses = [...]struct {
	name  string
	below int64
}{
	{"under 4 MiB", 4 << 20},
	{"4 MiB to 64 MiB", 64 << 20},
	{"64 MiB to 1 GiB", 1 << 30},
	{"1 GiB and more", 1 << 62},
}

func sizeClass(size int64) int {
	for i, c := range sizeClasses {
		if size < c.below {
			return i
		}
	}
	return len(sizeClasses) - 1
}

// quantiles summarise a sample.
type quantiles struct {
	Count  int     `json:"count"`
	Median float64 `json:"median"`
	P95    float64 `json:"p95"`
}

// reportBook validates client reports and keeps the per-group totals.
type reportBook struct {
	mu       sync.Mutex
	groups   map[string]*groupTotals
	worker   workerTotals
	limiters map[string]*rate.Limiter
}

func newReportBook() *reportBook {
	return &reportBook{groups: map[string]*groupTotals{}, limiters: map[string]*rate.Limiter{}}
}

// allow applies the per-address report rate.
func (b *reportBook) allow(addr string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.limiters[addr]
	if !ok {
		if len(b.limiters) >= maxReportLimiters {
			clear(b.limiters) // a flood of addresses costs them their history, not our memory
		}
		l = rate.NewLimiter(reportsPerSecond, reportBurst)
		b.limiters[addr] = l
	}
	return l.Allow()
}

// add records a validated report.
func (b *reportBook) add(r downloadReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[r.Group]
	if g == nil {
		g = &groupTotals{}
		b.groups[r.Group] = g
	}
	g.BytesUploaded += r.BytesUploaded
	g.downloadTotals.add(r)
	c := sizeClass(r.size)
	if g.bySize[c] == nil {
		g.bySize[c] = &downloadTotals{}
	}
	g.bySize[c].add(r)
}

func (d *downloadTotals) add(r downloadReport) {
	if d.Outcomes == nil {
		d.Outcomes = map[string]int64{}
	}
	d.Downloads++
	d.Outcomes[r.Outcome]++
	d.BytesFromHTTP += r.BytesFromHTTP
	d.BytesFromPeers += r.BytesFromPeers
	if r.Outcome == "ok" && r.DurationMs > 0 {
		secs := float64(r.DurationMs) / 1000
		d.seconds = appendBounded(d.seconds, secs)
		d.throughput = appendBounded(d.throughput, float64(r.BytesFromHTTP+r.BytesFromPeers)/secs)
	}
}

func appendBounded(s []float64, v float64) []float64 {
	if len(s) >= durationSampleSize {
		s = s[1:]
	}
	return append(s, v)
}

// snapshot returns the per-group totals with their quantiles.
func (b *reportBook) snapshot() map[string]groupTotals {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]groupTotals, len(b.groups))
	for name, g := range b.groups {
		c := groupTotals{downloadTotals: g.downloadTotals.snapshot(), BytesUploaded: g.BytesUploaded, Sizes: []sizeTotals{}}
		for i, d := range g.bySize {
			if d != nil {
				c.Sizes = append(c.Sizes, sizeTotals{Class: sizeClasses[i].name, downloadTotals: d.snapshot()})
			}
		}
		out[name] = c
	}
	return out
}

// snapshot is a copy with the offload and quantiles filled in.
func (d *downloadTotals) snapshot() downloadTotals {
	c := *d
	c.Outcomes = maps.Clone(d.Outcomes)
	if all := c.BytesFromHTTP + c.BytesFromPeers; all > 0 {
		c.Offload = float64(c.BytesFromPeers) / float64(all)
	}
	c.Seconds, c.Throughput = summarise(d.seconds), summarise(d.throughput)
	c.seconds, c.throughput = nil, nil
	return c
}

func summarise(sample []float64) quantiles {
	if len(sample) == 0 {
		return quantiles{}
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return quantiles{Count: len(s), Median: at(0.5), P95: at(0.95)}
}

// acceptReport answers POST {prefix}stats: a download report from a
// client. It answers 204 when recorded, 4xx with the reason otherwise.
func (h *Handler) acceptReport(w http.ResponseWriter, r *http.Request) error {
	reject := func(status int, reason, detail string) error {
		h.metrics.rejected.WithLabelValues(reason).Inc()
		return writeJSONError(w, status, detail)
	}
	if !h.coord.OriginAllowed(r) {
		return reject(http.StatusForbidden, "origin", "reports are accepted from the site's own pages only")
	}
	if !h.reports.allow(clientIP(r).String()) {
		return reject(http.StatusTooManyRequests, "rate", "too many reports; at most 2 per second")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxReportBody+1))
	if err != nil || len(body) > maxReportBody {
		return reject(http.StatusRequestEntityTooLarge, "size", "a report is at most 4 KiB of JSON")
	}
	var rep downloadReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return reject(http.StatusBadRequest, "malformed", "a report is a JSON object: "+err.Error())
	}
	if reason, detail := h.checkReport(siteOf(r), &rep); reason != "" {
		return reject(http.StatusBadRequest, reason, detail)
	}
	if rep.Via == viaServiceWorker {
		h.acceptWorkerReport(rep)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h.reports.add(rep)
	h.metrics.downloads.WithLabelValues(rep.Group, rep.Outcome).Inc()
	h.metrics.clientBytes.WithLabelValues("http", rep.Group).Add(float64(rep.BytesFromHTTP))
	h.metrics.clientBytes.WithLabelValues("peers", rep.Group).Add(float64(rep.BytesFromPeers))
	h.metrics.clientBytes.WithLabelValues("uploaded", rep.Group).Add(float64(rep.BytesUploaded))
	if rep.Outcome == "ok" {
		h.metrics.duration.WithLabelValues(rep.Group).Observe(float64(rep.DurationMs) / 1000)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkReport validates a report and clamps its byte counts to what the
// resource allows; it returns a metric reason and a message on refusal.
func (h *Handler) checkReport(site string, rep *downloadReport) (reason, detail string) {
	size, ok := h.manifests.Size(rep.Swarm)
	switch {
	case !ok || !h.manifests.Known(site, rep.Swarm):
		return "swarm", "swarm is not the id of a manifest this site built"
	case !validGroup(rep.Group):
		return "group", `group must be "p2p" or "http"`
	case !slices.Contains(reportOutcomes, rep.Outcome):
		return "outcome", `outcome must be "ok", "error" or "abort"`
	case rep.Via != "" && rep.Via != viaServiceWorker:
		return "via", `via must be "sw" or absent`
	case rep.BytesFromHTTP < 0 || rep.BytesFromPeers < 0 || rep.BytesUploaded < 0 || rep.BytesFromCache < 0 || rep.DurationMs < 0:
		return "negative", "byte counts and duration must not be negative"
	case rep.DurationMs > maxReportDuration.Milliseconds():
		return "duration", "duration is longer than a day"
	}
	// A download never brings more than the resource; uploads are bounded
	// by a generous number of copies of it.
	rep.BytesFromHTTP = min(rep.BytesFromHTTP, size)
	rep.BytesFromPeers = min(rep.BytesFromPeers, size-rep.BytesFromHTTP)
	rep.BytesUploaded = min(rep.BytesUploaded, 64*size)
	rep.BytesFromCache = min(rep.BytesFromCache, size)
	rep.size = size
	return "", ""
}
