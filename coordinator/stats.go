package coordinator

import (
	"sync"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// maxGroups bounds the distinct A/B groups tracked; groups are named by
// clients, so past this many the rest are counted under "".
const maxGroups = 16

// maxUploadCopies bounds what one membership's stats may claim uploaded,
// in copies of the resource: a seeder serves many peers, but not without
// end on one connection.
const maxUploadCopies = 1024

// Stats is a snapshot of the coordinator, for the module's /stats route
// and metrics. Byte counters add up the cumulative stats peers report.
type Stats struct {
	// Swarms with at least one member.
	Swarms int `json:"swarms"`
	// Peers is the number of connections that completed hello.
	Peers int `json:"peers"`
	// Members counts swarm memberships (a peer in two swarms counts twice).
	Members        int   `json:"members"`
	BytesFromHTTP  int64 `json:"bytesFromHttp"`
	BytesFromPeers int64 `json:"bytesFromPeers"`
	BytesUploaded  int64 `json:"bytesUploaded"`
	// SignalsRelayed, Reports and Bans count since start: signals passed
	// between introduced peers, bad-peer reports accepted, and peers
	// banned from a swarm.
	SignalsRelayed int64 `json:"signalsRelayed"`
	Reports        int64 `json:"reports"`
	Bans           int64 `json:"bans"`
	// Seeding is about the members that joined as seeders.
	Seeding SeedingStats `json:"seeding"`
	// Connections counts the outcomes peers reported of their attempts to
	// reach a neighbour (the offering side reports), on this node.
	Connections ConnectionStats `json:"connections"`
	// Groups breaks members and bytes down by the A/B group peers named in
	// hello; "" holds peers without a group (and any past 16 groups).
	Groups map[string]GroupStats `json:"groups"`

	// With a cluster backplane (NATS), Swarms, Members and the byte and
	// event counters above are those of the swarms whose state this node
	// holds, and Peers its own connections: summed over Nodes they give
	// the cluster's totals without counting anything twice. Node is this
	// node's id; Nodes has every live node's counts, this node's fresh
	// and the others' from their last heartbeat (at most one heartbeat
	// interval old). ClusterSwarms, ClusterMembers and ClusterPeers are
	// the sums. All are empty in a single process.
	Node           string               `json:"node,omitempty"`
	Nodes          map[string]NodeStats `json:"nodes,omitempty"`
	ClusterSwarms  int                  `json:"clusterSwarms,omitempty"`
	ClusterMembers int                  `json:"clusterMembers,omitempty"`
	ClusterPeers   int                  `json:"clusterPeers,omitempty"`
}

// NodeStats is one node's part of a cluster's Stats.
type NodeStats struct {
	// Peers is the connections the node holds; Members their swarm
	// memberships (wherever the swarms' state lives).
	Peers   int `json:"peers"`
	Members int `json:"members"`
	// OwnedSwarms are the swarms whose state the node holds, and
	// OwnedMembers their members, on any node.
	OwnedSwarms  int `json:"ownedSwarms"`
	OwnedMembers int `json:"ownedMembers"`
	// Counters of the owned swarms since the node started.
	BytesFromHTTP  int64 `json:"bytesFromHttp"`
	BytesFromPeers int64 `json:"bytesFromPeers"`
	BytesUploaded  int64 `json:"bytesUploaded"`
	SignalsRelayed int64 `json:"signalsRelayed"`
	// LastSeen is when these counts were taken.
	LastSeen time.Time `json:"lastSeen"`
}

// ConnectionStats counts connection attempts between peers by outcome:
// Connected by the kind of path the pair settled on (host, srflx, prflx,
// relay), and Failed.
type ConnectionStats struct {
	Connected map[string]int64 `json:"connected"`
	Failed    int64            `json:"failed"`
}

// SuccessRate is the share of attempts that connected, or -1 when there
// were none.
func (s ConnectionStats) SuccessRate() float64 {
	var ok int64
	for _, n := range s.Connected {
		ok += n
	}
	if ok+s.Failed == 0 {
		return -1
	}
	return float64(ok) / float64(ok+s.Failed)
}

// connectionBook accumulates connection reports.
type connectionBook struct {
	mu        sync.Mutex
	connected map[string]int64
	failed    int64
}

// add counts one report; result and path were validated by the decoder.
func (b *connectionBook) add(result, path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if result == protocol.ConnectionFailed {
		b.failed++
		return
	}
	if b.connected == nil {
		b.connected = map[string]int64{}
	}
	b.connected[path]++
}

func (b *connectionBook) snapshot() ConnectionStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := ConnectionStats{Connected: make(map[string]int64, len(b.connected)), Failed: b.failed}
	for k, v := range b.connected {
		s.Connected[k] = v
	}
	return s
}

// GroupStats is the part of Stats for one A/B group.
type GroupStats struct {
	Members        int   `json:"members"`
	BytesFromHTTP  int64 `json:"bytesFromHttp"`
	BytesFromPeers int64 `json:"bytesFromPeers"`
	BytesUploaded  int64 `json:"bytesUploaded"`
}

// statsBook accumulates totals; guarded by swarmTable.mu.
type statsBook struct {
	members                int
	signals, reports, bans int64
	total                  GroupStats
	groups                 map[string]*GroupStats
	seeding                seedingBook
}

// groupKey returns the key a group is counted under, bounding the map.
func (b *statsBook) groupKey(g string) string {
	if b.groups == nil {
		b.groups = make(map[string]*GroupStats)
	}
	if _, ok := b.groups[g]; ok || len(b.groups) < maxGroups {
		if !ok {
			b.groups[g] = new(GroupStats)
		}
		return g
	}
	if b.groups[""] == nil {
		b.groups[""] = new(GroupStats)
	}
	return ""
}

func (b *statsBook) member(group string, d int) {
	b.members += d
	b.groups[group].Members += d
}

func (b *statsBook) add(group string, http, peers, up int64) {
	g := b.groups[group]
	for _, c := range []struct {
		n    int64
		into []*int64
	}{
		{http, []*int64{&b.total.BytesFromHTTP, &g.BytesFromHTTP}},
		{peers, []*int64{&b.total.BytesFromPeers, &g.BytesFromPeers}},
		{up, []*int64{&b.total.BytesUploaded, &g.BytesUploaded}},
	} {
		for _, p := range c.into {
			*p = saturatingAdd(*p, c.n)
		}
	}
}

// saturatingAdd adds n >= 0 to v, holding at protocol.MaxCounter (the
// largest integer a JavaScript number holds exactly) so a total read by
// the dashboard never wraps around.
func saturatingAdd(v, n int64) int64 {
	if n > protocol.MaxCounter-v {
		return protocol.MaxCounter
	}
	return v + n
}

func (t *swarmTable) snapshot() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{
		Swarms:         len(t.swarms),
		Members:        t.totals.members,
		BytesFromHTTP:  t.totals.total.BytesFromHTTP,
		BytesFromPeers: t.totals.total.BytesFromPeers,
		BytesUploaded:  t.totals.total.BytesUploaded,
		SignalsRelayed: t.totals.signals,
		Reports:        t.totals.reports,
		Bans:           t.totals.bans,
		Seeding:        t.totals.seeding.snapshot(),
		Groups:         make(map[string]GroupStats, len(t.totals.groups)),
	}
	for k, g := range t.totals.groups {
		s.Groups[k] = *g
	}
	return s
}
