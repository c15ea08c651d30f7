package caddymodule

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// OffloadPolicy says when the server counts as loaded. While it is, the
// coordinator tells every client so (the load message), and clients take
// more of a file from peers: no first block over HTTP, no endgame
// duplicates, and blocks nobody has only after a short wait for
// neighbours. That raises offload and costs a visitor arriving first a
// little time. At most one field is set; none means the default: loaded
// while http_rate_limit holds responses back.
type OffloadPolicy struct {
	// Off: never loaded, whatever http_rate_limit does (it still paces).
	Off bool `json:"off,omitempty"`

	// Always: loaded all the time; every byte peers can carry, they carry.
	Always bool `json:"always,omitempty"`

	// EgressRate: loaded while the module sends shareable resources
	// faster than this many bytes per second (measured over the last
	// egressWindow), and for loadedWindow after.
	EgressRate int64 `json:"egress_rate,omitempty"`

	// InFlight: loaded while at least this many shareable responses are
	// being sent at once (whole files and block ranges alike), and for
	// loadedWindow after.
	InFlight int `json:"in_flight,omitempty"`
}

// parseOffload reads `offload off|always|<rate>/s|in_flight <n>`.
func parseOffload(d *caddyfile.Dispenser, h *Handler) error {
	if h.Offload != nil {
		return d.Errf("offload given twice")
	}
	if !d.NextArg() {
		return d.Errf("offload needs a policy: off, always, an egress rate such as 100MB/s, or in_flight <responses>")
	}
	p := &OffloadPolicy{}
	switch d.Val() {
	case "off":
		p.Off = true
	case "always":
		p.Always = true
	case "in_flight":
		if !d.NextArg() {
			return d.Errf("offload in_flight needs a number of responses, such as 64")
		}
		n, err := strconv.Atoi(d.Val())
		if err != nil || n < 1 {
			return d.Errf("offload in_flight: %q is not a positive whole number", d.Val())
		}
		p.InFlight = n
	default:
		rate, err := parseSize(d, "offload")
		if err != nil {
			return d.Errf("offload: %q is not a policy; expected off, always, an egress rate such as 100MB/s, or in_flight <responses>", d.Val())
		}
		if rate < 1 {
			return d.Errf("offload: an egress rate must be at least 1B/s")
		}
		p.EgressRate = rate
	}
	h.Offload = p
	return nil
}

// validate refuses a policy with more than one rule or a negative one.
func (p *OffloadPolicy) validate() error {
	set := 0
	for _, on := range []bool{p.Off, p.Always, p.EgressRate != 0, p.InFlight != 0} {
		if on {
			set++
		}
	}
	switch {
	case set > 1:
		return fmt.Errorf("p2pxhr: offload takes one of off, always, egress_rate or in_flight, not several")
	case p.EgressRate < 0:
		return fmt.Errorf("p2pxhr: offload egress_rate %d is negative", p.EgressRate)
	case p.InFlight < 0:
		return fmt.Errorf("p2pxhr: offload in_flight %d is negative", p.InFlight)
	}
	return nil
}

// String names the policy as the Caddyfile writes it.
func (p *OffloadPolicy) String() string {
	switch {
	case p == nil:
		return "http_rate_limit"
	case p.Off:
		return "off"
	case p.Always:
		return "always"
	case p.EgressRate > 0:
		return fmt.Sprintf("%dB/s", p.EgressRate)
	case p.InFlight > 0:
		return fmt.Sprintf("in_flight %d", p.InFlight)
	}
	return "http_rate_limit"
}

// egressWindow is the span over which egress_rate is measured: long enough
// to smooth one response's bursts, short enough to follow a crowd.
const egressWindow = 2 * time.Second

// loadSignal is the server's load hint: it measures what the policy needs
// (shareable bytes sent, responses in flight) and answers Loaded, which the
// coordinator polls.
type loadSignal struct {
	policy  *OffloadPolicy // nil: the rate limit decides
	limiter *byteLimiter

	now func() time.Time

	inFlight atomic.Int64
	lastOver atomic.Int64 // unix ns when the policy's threshold was last crossed
	egress   rateMeter
}

func newLoadSignal(policy *OffloadPolicy, limiter *byteLimiter) *loadSignal {
	return &loadSignal{policy: policy, limiter: limiter, now: time.Now, egress: rateMeter{window: egressWindow}}
}

// Loaded reports whether clients should lean on peers now.
func (l *loadSignal) Loaded() bool {
	p := l.policy
	switch {
	case p == nil:
		return l.limiter.Loaded()
	case p.Off:
		return false
	case p.Always:
		return true
	}
	now := l.now()
	if (p.EgressRate > 0 && l.egress.rate(now) > float64(p.EgressRate)) ||
		(p.InFlight > 0 && l.inFlight.Load() >= int64(p.InFlight)) {
		l.lastOver.Store(now.UnixNano())
	}
	last := l.lastOver.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) < loadedWindow
}

// sent counts n bytes of a shareable resource leaving the server.
func (l *loadSignal) sent(n int) {
	if l.policy != nil && l.policy.EgressRate > 0 && n > 0 {
		l.egress.add(l.now(), int64(n))
	}
}

// begin counts a shareable response starting; end must follow. A crowd
// that comes and goes between two polls of Loaded still counts.
func (l *loadSignal) begin() {
	n := l.inFlight.Add(1)
	if l.policy != nil && l.policy.InFlight > 0 && n >= int64(l.policy.InFlight) {
		l.lastOver.Store(l.now().UnixNano())
	}
}

// end counts a shareable response finished.
func (l *loadSignal) end() {
	n := l.inFlight.Add(-1)
	if l.policy != nil && l.policy.InFlight > 0 && n+1 >= int64(l.policy.InFlight) {
		// It was over until now: the window runs from here.
		l.lastOver.Store(l.now().UnixNano())
	}
}

// rateMeter measures bytes per second over a sliding window, in eight
// slots so that the window moves smoothly.
type rateMeter struct {
	window time.Duration

	mu    sync.Mutex
	slots [8]int64
	start int64 // unix ns of the current slot's start
	cur   int
}

func (m *rateMeter) slot() int64 { return int64(m.window) / int64(len(m.slots)) }

// advance moves the current slot to now, emptying the slots passed over.
func (m *rateMeter) advance(now time.Time) {
	t := now.UnixNano()
	if m.start == 0 {
		m.start = t
		return
	}
	steps := (t - m.start) / m.slot()
	if steps <= 0 {
		return
	}
	for i := int64(0); i < min(steps, int64(len(m.slots))); i++ {
		m.cur = (m.cur + 1) % len(m.slots)
		m.slots[m.cur] = 0
	}
	m.start += steps * m.slot()
}

func (m *rateMeter) add(now time.Time, n int64) {
	m.mu.Lock()
	m.advance(now)
	m.slots[m.cur] += n
	m.mu.Unlock()
}

// rate is the bytes per second over the last window.
func (m *rateMeter) rate(now time.Time) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(now)
	var sum int64
	for _, v := range m.slots {
		sum += v
	}
	return float64(sum) / m.window.Seconds()
}
