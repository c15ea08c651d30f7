package caddymodule

import (
	"encoding/json"
	"io"
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
}

var reportOutcomes = []string{"ok", "error", "abort"}

// groupTotals is the A/B comparison of one group.
type groupTotals struct {
	Downloads      int64            `json:"downloads"`
	Outcomes       map[string]int64 `json:"outcomes"`
	BytesFromHTTP  int64            `json:"bytesFromHttp"`
	BytesFromPeers int64            `json:"bytesFromPeers"`
	BytesUploaded  int64            `json:"bytesUploaded"`
	Offload        float64          `json:"offload"`
	Seconds        quantiles        `json:"durationSeconds"`
	Throughput     quantiles        `json:"throughputBytesPerSecond"`

	seconds, throughput []float64 // recent successful downloads
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
		g = &groupTotals{Outcomes: map[string]int64{}}
		b.groups[r.Group] = g
	}
	g.Downloads++
	g.Outcomes[r.Outcome]++
	g.BytesFromHTTP += r.BytesFromHTTP
	g.BytesFromPeers += r.BytesFromPeers
	g.BytesUploaded += r.BytesUploaded
	if r.Outcome == "ok" && r.DurationMs > 0 {
		secs := float64(r.DurationMs) / 1000
		g.seconds = appendBounded(g.seconds, secs)
		g.throughput = appendBounded(g.throughput, float64(r.BytesFromHTTP+r.BytesFromPeers)/secs)
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
		c := *g
		c.Outcomes = make(map[string]int64, len(g.Outcomes))
		for k, v := range g.Outcomes {
			c.Outcomes[k] = v
		}
		if all := c.BytesFromHTTP + c.BytesFromPeers; all > 0 {
			c.Offload = float64(c.BytesFromPeers) / float64(all)
		}
		c.Seconds, c.Throughput = summarise(g.seconds), summarise(g.throughput)
		c.seconds, c.throughput = nil, nil
		out[name] = c
	}
	return out
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
	if reason, detail := h.checkReport(&rep); reason != "" {
		return reject(http.StatusBadRequest, reason, detail)
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
func (h *Handler) checkReport(rep *downloadReport) (reason, detail string) {
	size, ok := h.manifests.Size(rep.Swarm)
	switch {
	case !ok:
		return "swarm", "swarm is not the id of a manifest this server built"
	case !validGroup(rep.Group):
		return "group", `group must be "p2p" or "http"`
	case !slices.Contains(reportOutcomes, rep.Outcome):
		return "outcome", `outcome must be "ok", "error" or "abort"`
	case rep.BytesFromHTTP < 0 || rep.BytesFromPeers < 0 || rep.BytesUploaded < 0 || rep.DurationMs < 0:
		return "negative", "byte counts and duration must not be negative"
	case rep.DurationMs > maxReportDuration.Milliseconds():
		return "duration", "duration is longer than a day"
	}
	// A download never brings more than the resource; uploads are bounded
	// by a generous number of copies of it.
	rep.BytesFromHTTP = min(rep.BytesFromHTTP, size)
	rep.BytesFromPeers = min(rep.BytesFromPeers, size-rep.BytesFromHTTP)
	rep.BytesUploaded = min(rep.BytesUploaded, 64*size)
	return "", ""
}
