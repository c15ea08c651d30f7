package caddymodule

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"

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

// statsReport is the JSON of GET {prefix}stats.
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
	// AB is the configured P2P percentage, or null without A/B groups.
	AB *float64 `json:"ab"`
	// ICE is the embedded STUN and TURN servers: where they listen or
	// why not, and what TURN relayed.
	ICE iceStatus `json:"ice"`
}

// serveStats answers GET {prefix}stats with totals, and POST with a
// client's download report.
func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodPost:
		return h.acceptReport(w, r)
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		return writeJSONError(w, http.StatusMethodNotAllowed, "stats answers GET, and POST for reports")
	}
	var rep statsReport
	rep.Swarm = h.coord.Stats()
	rep.Groups = h.reports.snapshot()
	rep.Origin.Bytes, rep.Origin.TopResources = h.origin.top(10)
	rep.AB = h.AB
	rep.ICE = h.ice.status
	rep.ICE.RelayedBytes, rep.ICE.Allocations = h.ice.turn.totals()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(rep)
}
