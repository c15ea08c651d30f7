package caddymodule

import "maps"

// viaServiceWorker marks a report of a response the service worker
// answered (downloadReport.Via).
const viaServiceWorker = "sw"

// workerTotals count the responses service workers answered, as their
// reports tell: how they ended and where their blocks came from (HTTP,
// peers, or the browser's own cache and the worker's memory). They are
// kept apart from the A/B downloads: a response is often a range of a
// file (a video's start, a seek), and its time says nothing of a download.
type workerTotals struct {
	Requests       int64            `json:"requests"`
	Outcomes       map[string]int64 `json:"outcomes"`
	BytesFromHTTP  int64            `json:"bytesFromHttp"`
	BytesFromPeers int64            `json:"bytesFromPeers"`
	BytesFromCache int64            `json:"bytesFromCache"`
}

// addWorker records a validated service worker report.
func (b *reportBook) addWorker(r downloadReport) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := &b.worker
	if t.Outcomes == nil {
		t.Outcomes = map[string]int64{}
	}
	t.Requests++
	t.Outcomes[r.Outcome]++
	t.BytesFromHTTP += r.BytesFromHTTP
	t.BytesFromPeers += r.BytesFromPeers
	t.BytesFromCache += r.BytesFromCache
}

// workerSnapshot is a copy of the service worker totals.
func (b *reportBook) workerSnapshot() workerTotals {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.worker
	c.Outcomes = maps.Clone(b.worker.Outcomes)
	if c.Outcomes == nil {
		c.Outcomes = map[string]int64{}
	}
	return c
}

// acceptWorkerReport books a report the service worker sent for one
// response: on {prefix}dashboard/stats (serviceWorker) and the metrics.
func (h *Handler) acceptWorkerReport(rep downloadReport) {
	h.reports.addWorker(rep)
	h.metrics.workerRequests.WithLabelValues(rep.Outcome).Inc()
	h.metrics.workerBytes.WithLabelValues("http").Add(float64(rep.BytesFromHTTP))
	h.metrics.workerBytes.WithLabelValues("peers").Add(float64(rep.BytesFromPeers))
	h.metrics.workerBytes.WithLabelValues("cache").Add(float64(rep.BytesFromCache))
}
