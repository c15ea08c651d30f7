package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// MemHub is an in-process signalling hub for tests: peers of one process
// meet, exchange offers, answers and candidates, and report each other with
// no coordinator. Newcomers offer to the members already in a swarm.
type MemHub struct {
	mu      sync.Mutex
	peers   map[string]*MemSignaller
	swarms  map[string]map[string]bool // swarm → member ids, in join order below
	order   map[string][]string
	banned  map[string]map[string]bool // swarm → reported peers
	reports []MemReport
	loaded  bool
}

// MemReport is one Report a MemHub received (or one Received, with Reason
// "received").
type MemReport struct {
	Swarm, From, Peer, Reason string
}

// NewMemHub returns an empty hub.
func NewMemHub() *MemHub {
	return &MemHub{
		peers:  map[string]*MemSignaller{},
		swarms: map[string]map[string]bool{},
		order:  map[string][]string{},
		banned: map[string]map[string]bool{},
	}
}

// hubQueue bounds each peer's channels; a test that overflows it has a bug.
const hubQueue = 4096

// Connect returns the signaller of a new peer named id.
func (h *MemHub) Connect(id string) *MemSignaller {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &MemSignaller{
		hub: h, id: id,
		neighbours: make(chan Introduction, hubQueue),
		signals:    make(chan Signal, hubQueue),
		loaded:     make(chan bool, 16),
	}
	h.peers[id] = s
	return s
}

// Reports returns the reports received so far.
func (h *MemHub) Reports() []MemReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]MemReport(nil), h.reports...)
}

// SetLoaded broadcasts the server-loaded hint to every connected peer.
func (h *MemHub) SetLoaded(loaded bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loaded = loaded
	for _, p := range h.peers {
		p.deliverLoaded(loaded)
	}
}

// MemSignaller is one peer's end of a MemHub.
type MemSignaller struct {
	hub        *MemHub
	id         string
	neighbours chan Introduction
	signals    chan Signal
	loaded     chan bool
	closed     bool // guarded by hub.mu
}

var errHubClosed = errors.New("memhub: signaller closed")

// ID returns the peer's id in the hub.
func (s *MemSignaller) ID() string { return s.id }

// Join implements Signaller: the newcomer is introduced to every member not
// reported in this swarm, and offers to them.
func (s *MemSignaller) Join(ctx context.Context, swarm, manifestURL string, have []bool) error {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return errHubClosed
	}
	if h.swarms[swarm] == nil {
		h.swarms[swarm] = map[string]bool{}
	}
	if h.swarms[swarm][s.id] {
		return fmt.Errorf("memhub: %s already joined %s", s.id, swarm)
	}
	banned := h.banned[swarm]
	for _, other := range h.order[swarm] {
		o := h.peers[other]
		if !h.swarms[swarm][other] || banned[other] || banned[s.id] || o.closed {
			continue
		}
		s.deliver(Introduction{Swarm: swarm, Peer: other, Offer: true})
		o.deliver(Introduction{Swarm: swarm, Peer: s.id, Offer: false})
	}
	h.swarms[swarm][s.id] = true
	h.order[swarm] = append(h.order[swarm], s.id)
	return nil
}

func (s *MemSignaller) deliver(in Introduction) {
	select {
	case s.neighbours <- in:
	default:
	}
}

func (s *MemSignaller) deliverLoaded(v bool) {
	if s.closed {
		return
	}
	select {
	case s.loaded <- v:
	default:
	}
}

// Neighbours implements Signaller.
func (s *MemSignaller) Neighbours() <-chan Introduction { return s.neighbours }

// Signals implements Signaller.
func (s *MemSignaller) Signals() <-chan Signal { return s.signals }

// Loaded implements Signaller.
func (s *MemSignaller) Loaded() <-chan bool { return s.loaded }

// Send implements Signaller; like the coordinator, the hub relays only
// between members of the same swarm.
func (s *MemSignaller) Send(ctx context.Context, to string, sig Signal) error {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.peers[to]
	if s.closed {
		return errHubClosed
	}
	if o == nil || o.closed || !h.swarms[sig.Swarm][to] || !h.swarms[sig.Swarm][s.id] {
		return fmt.Errorf("memhub: %s is not in swarm %s", to, sig.Swarm)
	}
	sig.From, sig.To = s.id, to
	select {
	case o.signals <- sig:
		return nil
	default:
		return fmt.Errorf("memhub: signal queue of %s full", to)
	}
}

// Have implements Signaller; the hub introduces by join order only, so it
// ignores announcements.
func (s *MemSignaller) Have(swarm string, blocks []int) {}

// Stats implements Signaller.
func (s *MemSignaller) Stats(swarm string, st SwarmStats) {}

// Report implements Signaller: a peer reported bad-block or protocol is
// never introduced in that swarm again.
func (s *MemSignaller) Report(swarm, peer, reason string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if reason == reasonBadBlock || reason == reasonProtocol {
		if h.banned[swarm] == nil {
			h.banned[swarm] = map[string]bool{}
		}
		h.banned[swarm][peer] = true
	}
	h.reports = append(h.reports, MemReport{Swarm: swarm, From: s.id, Peer: peer, Reason: reason})
}

// Received implements Signaller; the hub keeps the vouches as reports
// with reason "received", for tests.
func (s *MemSignaller) Received(swarm, peer string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, MemReport{Swarm: swarm, From: s.id, Peer: peer, Reason: protocol.TypeReceived})
}

// Leave implements Signaller.
func (s *MemSignaller) Leave(swarm string) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.swarms[swarm], s.id)
}

// Close implements Signaller.
func (s *MemSignaller) Close() error {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, members := range h.swarms {
		delete(members, s.id)
	}
	close(s.neighbours)
	close(s.signals)
	close(s.loaded)
	return nil
}

var _ Signaller = (*MemSignaller)(nil)
