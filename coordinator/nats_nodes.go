package coordinator

import (
	"encoding/json"
	"hash/fnv"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
)

// nodeView is one node's idea of the live nodes, sorted; every swarm has
// exactly one owner in it.
type nodeView struct{ nodes []string }

func newNodeView(nodes []string) nodeView {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	return nodeView{nodes: nodes}
}

// owner is the node with the highest rendezvous score for swarm: when a
// node joins or leaves, only the swarms it wins or held change owner.
func (v nodeView) owner(swarm string) string {
	best, bestScore := "", uint64(0)
	for _, n := range v.nodes {
		if s := rendezvous(n, swarm); best == "" || s > bestScore {
			best, bestScore = n, s
		}
	}
	return best
}

// rendezvous scores a (node, swarm) pair: FNV-1a of both, then the
// splitmix64 finalizer so that similar names spread well.
func rendezvous(node, swarm string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(swarm))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// nodeInfo is what this node knows of another: its last heartbeat.
type nodeInfo struct {
	boot  string
	seen  time.Time
	stats NodeStats
}

// grace is how long a rebuilt swarm waits for the states of all its
// members, and how long errors stay quiet after a change of nodes: nodes
// notice a change up to one interval apart, plus transit.
func (b *NATSBackplane) grace() time.Duration { return 2 * b.opts.HeartbeatInterval }

// run announces the node every interval, expires silent nodes and
// settles rebuilt swarms.
func (b *NATSBackplane) run() {
	defer b.wg.Done()
	b.heartbeat(true, false)
	tick := time.NewTicker(b.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-tick.C:
			b.heartbeat(false, false)
			b.refreshView()
			if b.table != nil {
				b.route.Lock()
				// A swarm handled here on another node's stale view is
				// not ours: its members' nodes rebuild it at the owner.
				b.table.release(func(id string) bool { return b.view.owner(id) == b.node })
				b.route.Unlock()
				b.table.settle(now)
			}
		}
	}
}

// heartbeat publishes this node's announcement.
func (b *NATSBackplane) heartbeat(hello, bye bool) {
	if !b.connected.Load() {
		return
	}
	data, err := json.Marshal(heartbeat{Node: b.node, Boot: b.boot, Hello: hello, Bye: bye, Stats: b.ownStats()})
	if err != nil {
		return
	}
	b.publish(b.hbSubject(), data)
}

// onHeartbeat records another node's announcement; a hello is answered
// at once and sent the states of this node's members in swarms it owns.
func (b *NATSBackplane) onHeartbeat(msg *nats.Msg) {
	var hb heartbeat
	if err := json.Unmarshal(msg.Data, &hb); err != nil || hb.Node == b.node || !subjectToken.MatchString(hb.Node) {
		return
	}
	b.nodesMu.Lock()
	prev := b.nodes[hb.Node]
	if hb.Bye {
		delete(b.nodes, hb.Node)
	} else {
		b.nodes[hb.Node] = &nodeInfo{boot: hb.Boot, seen: time.Now(), stats: hb.Stats}
	}
	b.nodesMu.Unlock()
	if prev != nil && prev.boot != hb.Boot && b.table != nil {
		// Restarted under the same id: its old peers are gone.
		b.table.dropNode(hb.Node)
	}
	known := b.refreshView()
	if hb.Hello && !hb.Bye {
		b.heartbeat(false, false)
		if known[hb.Node] {
			b.resyncTo(hb.Node)
		}
	}
}

// liveNodes is this node plus every node heard within the TTL; only this
// node while NATS is away.
func (b *NATSBackplane) liveNodes(now time.Time) []string {
	live := []string{b.node}
	if !b.connected.Load() {
		return live
	}
	b.nodesMu.Lock()
	defer b.nodesMu.Unlock()
	for id, n := range b.nodes {
		if now.Sub(n.seen) <= b.opts.HeartbeatTTL {
			live = append(live, id)
		}
	}
	return live
}

// refreshView applies a change of the live node set and returns the set
// as it was before, so a caller can tell a newcomer.
func (b *NATSBackplane) refreshView() map[string]bool {
	v := newNodeView(b.liveNodes(time.Now()))
	b.route.Lock()
	defer b.route.Unlock()
	old := b.view
	before := make(map[string]bool, len(old.nodes))
	for _, n := range old.nodes {
		before[n] = true
	}
	if slices.Equal(old.nodes, v.nodes) {
		return before
	}
	b.view = v
	b.applyView(old, v)
	return before
}

// applyView moves swarm state after the node set changed (under route):
// peers of nodes that left are dropped from the swarms owned here, swarms
// now owned elsewhere are forgotten, and the states of local members of
// swarms whose owner changed are sent to the new owner.
func (b *NATSBackplane) applyView(old, cur nodeView) {
	b.log.Info("NATS backplane: node set changed", zap.Strings("was", old.nodes), zap.Strings("now", cur.nodes))
	if b.table != nil {
		b.table.hush(time.Now().Add(b.grace()))
		for _, n := range old.nodes {
			if !slices.Contains(cur.nodes, n) {
				b.table.dropNode(n)
			}
		}
		b.table.release(func(id string) bool { return cur.owner(id) == b.node })
	}
	for _, id := range b.ledger.swarmIDs() {
		if o := cur.owner(id); o != old.owner(id) {
			for _, st := range b.ledger.states(id) {
				b.sendState(o, id, b.node, st, 0)
			}
		}
	}
}

// resyncTo sends node the states of local members of the swarms it owns:
// it has just (re)started or reconnected and may have lost them.
func (b *NATSBackplane) resyncTo(node string) {
	b.route.Lock()
	defer b.route.Unlock()
	for _, id := range b.ledger.swarmIDs() {
		if b.view.owner(id) == node {
			for _, st := range b.ledger.states(id) {
				b.sendState(node, id, b.node, st, 0)
			}
		}
	}
}

// ownStats is this node's entry in the cluster's stats.
func (b *NATSBackplane) ownStats() NodeStats {
	b.peersMu.RLock()
	peers := len(b.peers)
	b.peersMu.RUnlock()
	ns := NodeStats{Peers: peers, Members: b.ledger.memberships(), LastSeen: time.Now().UTC().Truncate(time.Millisecond)}
	if b.table != nil {
		s := b.table.snapshot()
		ns.OwnedSwarms, ns.OwnedMembers = s.Swarms, s.Members
		ns.BytesFromHTTP, ns.BytesFromPeers, ns.BytesUploaded = s.BytesFromHTTP, s.BytesFromPeers, s.BytesUploaded
		ns.SignalsRelayed = s.SignalsRelayed
	}
	return ns
}

// clusterStats returns this node's id and every live node's stats, its
// own fresh and the others' from their last heartbeats.
func (b *NATSBackplane) clusterStats() (string, map[string]NodeStats) {
	out := map[string]NodeStats{b.node: b.ownStats()}
	b.route.Lock()
	live := slices.Clone(b.view.nodes)
	b.route.Unlock()
	b.nodesMu.Lock()
	defer b.nodesMu.Unlock()
	for _, id := range live {
		if n := b.nodes[id]; n != nil && id != b.node {
			out[id] = n.stats
		}
	}
	return b.node, out
}

// Nodes returns the ids of the nodes this node currently shares swarms
// with, itself included, sorted.
func (b *NATSBackplane) Nodes() []string {
	b.route.Lock()
	defer b.route.Unlock()
	return slices.Clone(b.view.nodes)
}
