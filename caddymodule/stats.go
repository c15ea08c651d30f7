package caddymodule

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

// maxTrackedResources bounds the per-resource byte counts.
const maxTrackedResources = 1000

// originBook counts the bytes of shareable resources the module let
// through from the origin: the server-side truth beside client reports.
type originBook struct {
	mu    sync.Mutex
	total int64
	byURL map[string]int64
}

func newOriginBook() *originBook { return &originBook{byURL: map[string]int64{}} }

func (b *originBook) add(url string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += n
	if _, ok := b.byURL[url]; ok || len(b.byURL) < maxTrackedResources {
		b.byURL[url] += n
	}
}

func (b *originBook) sum() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// resourceBytes is one line of the top resources.
type resourceBytes struct {
	URL   string `json:"url"`
	Bytes int64  `json:"bytes"`
}

func (b *originBook) top(n int) (int64, []resourceBytes) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := make([]resourceBytes, 0, len(b.byURL))
	for u, v := range b.byURL {
		all = append(all, resourceBytes{u, v})
	}
	slices.SortFunc(all, func(a, b resourceBytes) int {
		if a.Bytes != b.Bytes {
			return int(b.Bytes - a.Bytes)
		}
		return compareStrings(a.URL, b.URL)
	})
	return b.total, all[:min(n, len(all))]
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// statsReport is the JSON of GET {prefix}dashboard/stats.
type statsReport struct {
	// Swarm is the coordinator's live view: peers, swarms, and the bytes
	// peers reported while downloading (client-claimed).
	Swarm coordinator.Stats `json:"swarm"`
	// Groups are the finished downloads clients reported, per A/B group
	// (client-claimed, validated and clamped).
	Groups map[string]groupTotals `json:"groups"`
	// Origin is what the module really let through for shareable
	// resources (server-side truth).
	Origin struct {
		Bytes        int64           `json:"bytes"`
		TopResources []resourceBytes `json:"topResources"`
	} `json:"origin"`
	// ServiceWorker is what service workers answered (service worker
	// mode; client-claimed, validated and clamped).
	ServiceWorker workerTotals `json:"serviceWorker"`
	// AB is the configured P2P percentage, or null without A/B groups.
	AB *float64 `json:"ab"`
	// ICE is the embedded STUN and TURN servers: where they listen or
	// why not, and what TURN relayed.
	ICE iceStatus `json:"ice"`
	// History, asked for with ?history=<Unix ms>, holds the slots of the
	// last hour that start at or after that time (0: all of them).
	History *historyReport `json:"history,omitempty"`
}

// historyReport is the history part of GET {prefix}dashboard/stats.
type historyReport struct {
	SlotSeconds int            `json:"slotSeconds"`
	Points      []historyPoint `json:"points"`
}

// serveReports answers POST {prefix}stats, where clients send their
// download reports. The operators' figures are not served here: a public
// path would give anyone the site's top resources and A/B results.
func (h *Handler) serveReports(w http.ResponseWriter, r *http.Request) error {
	if r.Method == http.MethodPost {
		return h.acceptReport(w, r)
	}
	w.Header().Set("Allow", "POST")
	return writeJSONError(w, http.StatusMethodNotAllowed,
		"stats takes POSTed download reports; the operators' figures are at "+h.Prefix+"dashboard/stats when the dashboard is on")
}

// serveStats answers GET {prefix}dashboard/stats (with `dashboard`) with
// the operators' totals.
func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSONError(w, http.StatusMethodNotAllowed, "dashboard/stats answers GET only")
	}
	var rep statsReport
	rep.Swarm = h.coord.Stats()
	rep.Groups = h.reports.snapshot()
	rep.ServiceWorker = h.reports.workerSnapshot()
	rep.Origin.Bytes, rep.Origin.TopResources = h.origin.top(10)
	rep.AB = h.AB
	rep.ICE = h.ice.status
	rep.ICE.RelayedBytes, rep.ICE.Allocations = h.ice.turn.totals()
	if q := r.URL.Query(); q.Has("history") {
		since, err := strconv.ParseInt(q.Get("history"), 10, 64)
		if err != nil {
			return writeJSONError(w, http.StatusBadRequest, "history must be a time in Unix milliseconds (0 for the whole hour)")
		}
		rep.History = &historyReport{SlotSeconds: int(historySlot / time.Second), Points: h.history.since(time.Now(), since)}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(rep)
}
