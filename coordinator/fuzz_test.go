package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// fuzzSwarms are the swarms the fuzzed coordinator knows: the first two
// with a block count from the server, the third with the first joiner's.
var fuzzSwarms = []string{strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)}

const (
	fuzzPeers = 6
	fuzzSize  = 3 << 20 // the size of fuzzSwarms[0]
)

// FuzzCoordinatorMessages drives the coordinator's message handling — the
// connection's checks (dispatch) and the swarm state behind them — with
// sequences of messages from six peers, each encoded and decoded on the
// way as on the wire. Whatever the sequence: nothing panics; every link is
// symmetric, between two members, within the degree bound; members are
// counted right; stats stay within the resource's bounds and never go
// negative; and when every peer has left, no swarm and no member remain.
func FuzzCoordinatorMessages(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0xff, 1, 0, 0, 0, 2, 1, 0, 1, 3, 0, 0, 0, 4, 1, 0, 0, 5, 0, 0, 0})
	f.Add([]byte{0, 1, 2, 9, 0, 2, 1, 0, 0, 3, 2, 0, 1, 1, 2, 1, 6, 0, 0, 0, 7, 1, 1, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 4, 0, 0, 2, 4, 1, 0, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		known := map[string]int{fuzzSwarms[0]: 24, fuzzSwarms[1]: 9}
		c, err := New(Config{
			KnownSwarm:       func(id string) bool { return id == fuzzSwarms[0] || id == fuzzSwarms[1] || id == fuzzSwarms[2] },
			SwarmBlocks:      func(id string) (int, bool) { n, ok := known[id]; return n, ok },
			SwarmSize:        func(id string) (int64, bool) { return fuzzSize, id == fuzzSwarms[0] },
			MaxNeighbours:    2,
			MaxDegree:        3,
			MaxPeersPerSwarm: 5,
			MaxSwarmsPerConn: 2,
			SendQueue:        1 << 16,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		peers := make([]*client, fuzzPeers)
		for i := range peers {
			cl := newClient(c, nil, "http://a.test", "", "")
			cl.id = fmt.Sprintf("%064x", i+1)
			cl.detach = c.bp.Attach(cl.id, cl.deliver)
			cl.welcomed.Store(true)
			cl.out.writing = true // no socket: the test drains the queue itself
			peers[i] = cl
		}
		for len(ops) >= 4 {
			from := peers[int(ops[0])%fuzzPeers]
			m := fuzzMessage(ops[1], ops[2], ops[3], peers)
			ops = ops[4:]
			if m == nil {
				continue
			}
			b, err := protocol.EncodeCoordinatorMessage(m)
			if err != nil {
				continue // not a valid message: the client's encoder refuses it
			}
			decoded, err := protocol.DecodeCoordinatorMessage(b)
			if err != nil {
				t.Fatalf("%s encodes but does not decode: %v", b, err)
			}
			from.dispatch(decoded)
			for _, p := range peers {
				p.out.mu.Lock()
				p.out.queue = nil
				p.out.mu.Unlock()
			}
			checkTable(t, c.table)
		}
		for _, p := range peers {
			p.mu.Lock()
			swarms := slices.Clone(p.swarms)
			p.mu.Unlock()
			for _, s := range swarms {
				p.dispatch(&protocol.Leave{Swarm: s})
			}
		}
		checkTable(t, c.table)
		if st := c.table.snapshot(); st.Swarms != 0 || st.Members != 0 {
			t.Fatalf("every peer left, but %d swarms and %d members remain", st.Swarms, st.Members)
		}
	})
}

// fuzzMessage turns three bytes into a message from a peer: a join, have,
// signal, report, stats or leave for one of the fuzzSwarms.
func fuzzMessage(kind, a, b byte, peers []*client) protocol.CoordinatorMessage {
	swarm := fuzzSwarms[int(a)%len(fuzzSwarms)]
	other := peers[int(b)%len(peers)].id
	switch kind % 8 {
	case 0, 1:
		blocks := []int{24, 9, 5, 1 + int(b)}[int(a>>2)%4]
		bits := protocol.NewBitfield(blocks)
		for i := range blocks {
			if (int(b)>>(i%8))&1 == 1 {
				bits.Set(i)
			}
		}
		return &protocol.Join{Swarm: swarm, Blocks: blocks, Bitfield: bits}
	case 2:
		return &protocol.Have{Swarm: swarm, Blocks: []int{int(b) % 30}}
	case 3:
		return &protocol.Signal{Swarm: swarm, To: other, Kind: protocol.SignalOffer, Data: "v=0"}
	case 4:
		return &protocol.Report{Swarm: swarm, Peer: other, Reason: protocol.ReportBadBlock}
	case 5:
		n := int64(b) << (a % 48)
		return &protocol.Stats{Swarm: swarm, BytesFromHTTP: n, BytesFromPeers: n / 2, BytesUploaded: n * 3 % protocol.MaxCounter}
	case 6:
		return &protocol.Leave{Swarm: swarm}
	}
	return nil
}

// checkTable fails t when the swarm state breaks one of its invariants.
func checkTable(t *testing.T, tab *swarmTable) {
	t.Helper()
	tab.mu.Lock()
	defer tab.mu.Unlock()
	members := 0
	for id, s := range tab.swarms {
		if len(s.members) == 0 {
			t.Fatalf("swarm %.8s is kept with no member", id)
		}
		members += len(s.members)
		limit := int64(s.blocks) * protocol.MaxBlockSize
		if id == fuzzSwarms[0] {
			limit = fuzzSize
		}
		for mid, m := range s.members {
			if len(m.links) > tab.cfg.MaxDegree {
				t.Fatalf("%.8s has %d links, more than %d", mid, len(m.links), tab.cfg.MaxDegree)
			}
			if (m.open >= 0) != (len(m.links) < tab.cfg.MaxDegree) || m.open >= 0 && s.open[m.open] != m {
				t.Fatalf("%.8s: open index %d with %d links", mid, m.open, len(m.links))
			}
			for nid := range m.links {
				n := s.members[nid]
				if n == nil || nid == mid {
					t.Fatalf("%.8s linked to %.8s, gone or itself", mid, nid)
				}
				if _, ok := n.links[mid]; !ok {
					t.Fatalf("link %.8s→%.8s is one-sided", mid, nid)
				}
			}
			if m.http < 0 || m.peers < 0 || m.up < 0 || m.http > limit || m.peers > limit || m.up > maxUploadCopies*limit {
				t.Fatalf("%.8s counts %d/%d/%d bytes in a swarm of at most %d", mid, m.http, m.peers, m.up, limit)
			}
			if m.count != m.bits.Count() || m.bits.Check(s.blocks) != nil {
				t.Fatalf("%.8s: count %d for a bitfield of %d set, %v", mid, m.count, m.bits.Count(), m.bits.Check(s.blocks))
			}
		}
	}
	if members != tab.totals.members {
		t.Fatalf("%d members in the swarms, %d counted", members, tab.totals.members)
	}
	for g, gs := range tab.totals.groups {
		if gs.Members < 0 || gs.BytesFromHTTP < 0 || gs.BytesFromPeers < 0 || gs.BytesUploaded < 0 {
			t.Fatalf("group %q: %+v", g, *gs)
		}
	}
}
