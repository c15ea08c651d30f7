package caddymodule

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// The dashboard's history: one hour in 10-second slots, sampled every two
// seconds (the dashboard's own poll), so a dashboard opened late still
// shows what happened before.
const (
	historySlot   = 10 * time.Second
	historySlots  = 360
	historySample = 2 * time.Second
)

// usageSample is what the module knows at one moment: cumulative byte
// counters (which only grow, except that a new coordinator after a config
// reload starts again from zero) and gauges.
type usageSample struct {
	FromPeers, FromHTTP int64 // live counters peers report while downloading (client-claimed)
	Origin              int64 // bytes the module let through for shareable resources (server count)
	Peers, Swarms       int   // connected now
}

// historyPoint is one slot of the history, as GET {prefix}dashboard/stats?history=
// returns it: the bytes of each kind counted during the slot and the most
// peers and swarms seen in it.
type historyPoint struct {
	T         int64 `json:"t"` // slot start, Unix milliseconds
	FromPeers int64 `json:"fromPeers"`
	FromHTTP  int64 `json:"fromHttp"`
	Origin    int64 `json:"origin"`
	Peers     int   `json:"peers"`
	Swarms    int   `json:"swarms"`
}

// usageHistory is a bounded ring of per-slot totals. It is fed samples of
// cumulative counters and books their growth into the slot of the sample's
// time; a counter that went down (a new coordinator after a reload) is
// taken as a restart from there, never as negative traffic. It holds no
// goroutine and no reference to the handler, so it can outlive one config
// and be fed by the next.
type usageHistory struct {
	mu    sync.Mutex
	slot  time.Duration
	ring  []historyPoint
	last  usageSample
	begun bool
}

func newUsageHistory(slot time.Duration, slots int) *usageHistory {
	return &usageHistory{slot: slot, ring: make([]historyPoint, slots)}
}

// growth is how much a cumulative counter grew since last; a counter that
// went down restarted, and its first value is not traffic we can date.
func growth(now, last int64) int64 { return max(0, now-last) }

// observe books a sample taken at now.
func (h *usageHistory) observe(now time.Time, s usageSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.slotAt(now)
	if h.begun {
		p.FromPeers += growth(s.FromPeers, h.last.FromPeers)
		p.FromHTTP += growth(s.FromHTTP, h.last.FromHTTP)
		p.Origin += growth(s.Origin, h.last.Origin)
	}
	p.Peers = max(p.Peers, s.Peers)
	p.Swarms = max(p.Swarms, s.Swarms)
	h.last, h.begun = s, true
}

// slotAt returns the ring entry of now's slot, cleared if it held an older one.
func (h *usageHistory) slotAt(now time.Time) *historyPoint {
	start := now.Truncate(h.slot).UnixMilli()
	p := &h.ring[(start/h.slot.Milliseconds())%int64(len(h.ring))]
	if p.T != start {
		*p = historyPoint{T: start}
	}
	return p
}

// since returns the slots of the last len(ring) slots up to now that start
// at or after sinceMs, oldest first. Slots nothing was booked in (the
// module was not running) are absent.
func (h *usageHistory) since(now time.Time, sinceMs int64) []historyPoint {
	h.mu.Lock()
	defer h.mu.Unlock()
	step := h.slot.Milliseconds()
	end := now.Truncate(h.slot).UnixMilli()
	first := max(sinceMs, end-step*int64(len(h.ring)-1))
	out := []historyPoint{}
	for _, p := range h.ring {
		if p.T != 0 && p.T >= first && p.T <= end {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b historyPoint) int { return cmp.Compare(a.T, b.T) })
	return out
}

// sample is what the handler knows now, for the history.
func (h *Handler) sample() usageSample {
	sw := h.coord.Stats()
	s := usageSample{FromPeers: sw.BytesFromPeers, FromHTTP: sw.BytesFromHTTP, Origin: h.origin.sum(), Peers: sw.Peers, Swarms: sw.Swarms}
	if sw.ClusterPeers > 0 { // with a cluster, the whole cluster's counts, as the dashboard shows
		s.Peers, s.Swarms = sw.ClusterPeers, sw.ClusterSwarms
	}
	return s
}

// recordHistory samples the handler into its history every historySample
// until stop is closed, then closes done. Provision takes the first sample.
func (h *Handler) recordHistory(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(historySample)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			h.history.observe(now, h.sample())
		}
	}
}
