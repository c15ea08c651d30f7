package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/peer"
)

// rateLimit throttles each node's origin so that peers matter: 4 MiB
// alone over HTTP takes 16s.
const rateLimit = "256KiB"

// TestSeederOnAGetterOnB: a Go peer seeding through node A serves a Go
// peer downloading through node B; the two only meet through NATS.
func TestSeederOnAGetterOnB(t *testing.T) {
	c := startCluster(t, nodeOptions{rateLimit: rateLimit})
	data := demoContent(1)
	// The same bytes on both nodes make the same swarm; each node builds
	// its manifest (a node only admits joins to swarms it built).
	if ia, ib := c.a.manifestID(t, "/files/demo.bin"), c.b.manifestID(t, "/files/demo.bin"); ia != ib {
		t.Fatalf("manifest ids differ: node a %s, node b %s", ia, ib)
	}

	seeder := goPeer(t, "seeder@a", c.a.base, nil)
	seed(t, seeder, c.a.base+"/files/demo.bin", data)
	waitFor(t, 10*time.Second, "the seeder to join on a", func() bool { return c.a.localMembers(t) == 1 })
	// b hears of it by a's heartbeat.
	waitFor(t, 5*time.Second, "b to count the seeder", func() bool { return c.b.stats(t).ClusterMembers == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	getter := goPeer(t, "getter@b", c.b.base, nil)
	start := time.Now()
	res := download(t, ctx, getter, c.b.base+"/files/demo.bin", data)
	t.Logf("getter on b: %d bytes from HTTP, %d from %d peers in %v; seeder on a uploaded %d",
		res.BytesFromHTTP, res.BytesFromPeers, res.PeersUsed, time.Since(start).Round(time.Millisecond), seeder.Uploaded())
	if res.BytesFromPeers <= 0 || res.BytesFromHTTP+res.BytesFromPeers != fileSize {
		t.Fatalf("getter on b: %d bytes from peers, %d from HTTP; want some from the seeder on a, %d in all",
			res.BytesFromPeers, res.BytesFromHTTP, fileSize)
	}
	if seeder.Uploaded() < res.BytesFromPeers {
		t.Errorf("seeder on a uploaded %d bytes, the getter got %d from peers", seeder.Uploaded(), res.BytesFromPeers)
	}
}

// TestNodeKilledMidSwarm: node b dies (SIGKILL, no goodbye) while peers
// on node a download with seeders on both nodes. a drops b and its peers
// within the heartbeat TTL, and a's downloads complete. Two swarms, one
// owned by each node, so both cases of §5.3 happen: a swarm that stays
// on a, and one whose owner dies mid-download.
func TestNodeKilledMidSwarm(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	c := startCluster(t, nodeOptions{rateLimit: rateLimit, seeds: seeds[1:]})
	ida, idb := c.a.ID(), c.b.ID()

	// One swarm owned by a and one by b (each seed is a swarm; 12 of them
	// leave a chance of 1 in 2048 that one node owns none).
	type swarm struct {
		seed  uint64
		path  string
		owner string
		data  []byte
	}
	var swarms []*swarm
	var ownedByA, ownedByB bool
	for _, s := range seeds {
		p := "/files/demo.bin"
		if s != 1 {
			p = fmt.Sprintf("/s%d/demo.bin", s)
		}
		o := owner(c.a.manifestID(t, p), ida, idb)
		if (o == ida && !ownedByA) || (o == idb && !ownedByB) {
			ownedByA, ownedByB = ownedByA || o == ida, ownedByB || o == idb
			swarms = append(swarms, &swarm{seed: s, path: p, owner: o, data: demoContent(s)})
		}
		if ownedByA && ownedByB {
			break
		}
	}
	if len(swarms) < 2 {
		t.Logf("all %d swarms are owned by one node (chance 1 in 2048): only that case is tested", len(seeds))
	}
	for _, s := range swarms {
		c.b.manifestID(t, s.path)
	}

	seederA := goPeer(t, "seeder@a", c.a.base, nil)
	seederB := goPeer(t, "seeder@b", c.b.base, nil)
	for _, s := range swarms {
		seed(t, seederA, c.a.base+s.path, s.data)
		seed(t, seederB, c.b.base+s.path, s.data)
	}
	n := len(swarms)
	waitFor(t, 10*time.Second, "the seeders to join", func() bool {
		return c.a.localMembers(t) == n && c.b.localMembers(t) == n
	})
	// The owners the protocol's text predicts are the owners.
	waitFor(t, 5*time.Second, "each node to own the swarms §5.1 gives it", func() bool {
		sa, sb := c.a.stats(t), c.b.stats(t)
		wantA, wantB := 0, 0
		for _, s := range swarms {
			if s.owner == ida {
				wantA++
			} else {
				wantB++
			}
		}
		return sa.Swarms == wantA && sb.Swarms == wantB && sa.Members == 2*wantA && sb.Members == 2*wantB
	})

	// Getters on a, writing slowly (120ms a block, 16 blocks): b dies
	// while they are at work.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type getter struct {
		loaded atomic.Int64
		res    peer.Result
		err    error
		out    memFile
		doneAt time.Time
	}
	getters := make([]*getter, n)
	var wg sync.WaitGroup
	for i, s := range swarms {
		g := &getter{out: memFile{delay: 120 * time.Millisecond}}
		getters[i] = g
		cl := goPeer(t, fmt.Sprintf("getter@a (seed %d)", s.seed), c.a.base, func(p peer.Progress) { g.loaded.Store(p.Loaded) })
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.res, g.err = cl.Download(ctx, c.a.base+s.path, &g.out)
			g.doneAt = time.Now()
		}()
	}
	// Meanwhile, how late b's heartbeats reach a under this load.
	hbStop, hbDone := make(chan struct{}), make(chan struct{})
	var maxAge time.Duration
	flaps := 0
	go func() {
		defer close(hbDone)
		for {
			select {
			case <-hbStop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if s, err := c.a.statsErr(); err == nil {
				if ns, ok := s.Nodes[idb]; ok {
					maxAge = max(maxAge, time.Since(ns.LastSeen))
				} else {
					flaps++
				}
			}
		}
	}()
	waitFor(t, 20*time.Second, "the getters to be a quarter done", func() bool {
		for _, g := range getters {
			if g.loaded.Load() < fileSize/4 {
				return false
			}
		}
		return true
	})
	close(hbStop)
	<-hbDone
	t.Logf("while the getters ran: b's heartbeats as a saw them were at most %v old; a lost sight of b %d times", maxAge.Round(time.Millisecond), flaps)
	if flaps > 0 {
		// Not a failure: the TTL here is tight for a loaded machine. A
		// drop of a live node tears down its peers' links (peer-left),
		// which the downloads must survive anyway.
		t.Logf("NOTE: a dropped b, alive, for a moment (heartbeats up to %v old, TTL %v)", maxAge, ttl)
	}
	before := c.a.stats(t)
	killed := time.Now()
	c.b.kill(t)
	t.Logf("b killed and reaped in %v; its last heartbeat a had seen was %v old",
		time.Since(killed).Round(time.Millisecond), killed.Sub(before.Nodes[idb].LastSeen).Round(time.Millisecond))
	for i, g := range getters {
		if l := g.loaded.Load(); l >= fileSize {
			t.Errorf("getter %d had finished when b died: the test did not kill b mid-download", i)
		}
	}

	// a forgets b and its peers: no node but a, no member but a's own in
	// the swarms a now owns, no peer but a's in the cluster's totals.
	var last string
	waitFor(t, 5*time.Second, "a to drop b and its peers", func() bool {
		s := c.a.stats(t)
		self := s.Nodes[s.Node]
		last = fmt.Sprintf("nodes %d, members %d (a's own %d), cluster peers %d (a's own %d)", len(s.Nodes), s.Members, self.Members, s.ClusterPeers, self.Peers)
		return len(s.Nodes) == 1 && s.Members == self.Members && s.ClusterPeers == self.Peers && s.ClusterMembers == self.Members
	})
	took := time.Since(killed)
	t.Logf("a dropped b and its peers %v after the kill (TTL %v): before: %d nodes, %d cluster peers, %d cluster members; after: %s",
		took.Round(time.Millisecond), ttl, len(before.Nodes), before.ClusterPeers, before.ClusterMembers, last)
	// §5.3: within TTL + interval, + 2 × interval if the dead node owned
	// a swarm: 700ms here. Allow for a loaded machine.
	if limit := ttl + 3*heartbeat + time.Second; took > limit {
		t.Errorf("a took %v to drop b's peers; §5.3 promises %v", took, ttl+3*heartbeat)
	}

	wg.Wait()
	for i, g := range getters {
		s := swarms[i]
		if g.err != nil {
			t.Fatalf("getter on a of the swarm owned by %s: %v", s.owner, g.err)
		}
		if !g.out.equal(s.data) {
			t.Fatalf("getter on a of the swarm owned by %s: the bytes differ from the origin's", s.owner)
		}
		t.Logf("getter on a of the swarm owned by %s: %d bytes from HTTP, %d from %d peers, done %v after b died",
			s.owner, g.res.BytesFromHTTP, g.res.BytesFromPeers, g.res.PeersUsed, g.doneAt.Sub(killed).Round(time.Millisecond))
	}
	// Still consistent once the downloads are over: a's seeders alone.
	waitFor(t, 5*time.Second, "a's swarms to hold its seeders alone", func() bool {
		s := c.a.stats(t)
		return s.Members == n && s.Swarms == n && s.ClusterPeers == s.Nodes[s.Node].Peers
	})
}

// TestNATSRestart: NATS goes away and a new server comes up on the same
// port; both nodes carry on alone meanwhile, reconnect, and introduce
// peers across nodes again: a new seeder on a serves a new getter on b.
// A seeder that joined before the outage is found again too (the nodes
// rebuild swarms from their members' state, §5.4).
func TestNATSRestart(t *testing.T) {
	c := startCluster(t, nodeOptions{rateLimit: rateLimit, seeds: []uint64{2}})
	data, old := demoContent(1), demoContent(2)
	for _, n := range []*node{c.a, c.b} {
		n.manifestID(t, "/files/demo.bin")
		n.manifestID(t, "/s2/demo.bin")
	}
	// A seeder of /s2/ joined before the outage, kept through it.
	oldSeeder := goPeer(t, "old seeder@a", c.a.base, nil)
	seed(t, oldSeeder, c.a.base+"/s2/demo.bin", old)
	waitFor(t, 10*time.Second, "the old seeder to join", func() bool { return c.a.localMembers(t) == 1 })

	stopNATS(c.nats)
	alone := waitNodes(t, 1, 5*time.Second, c.a, c.b)
	t.Logf("NATS stopped: each node alone after %v", alone.Round(time.Millisecond))
	startNATS(t, c.port)
	back := waitNodes(t, 2, 15*time.Second, c.a, c.b)
	t.Logf("NATS restarted on port %d: the nodes see each other again after %v", c.port, back.Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seeder := goPeer(t, "new seeder@a", c.a.base, nil)
	seed(t, seeder, c.a.base+"/files/demo.bin", data)
	waitFor(t, 10*time.Second, "the new seeder to join", func() bool { return c.a.localMembers(t) == 2 })
	waitFor(t, 5*time.Second, "b to count both seeders", func() bool { return c.b.stats(t).ClusterMembers == 2 })

	getter := goPeer(t, "getter@b", c.b.base, nil)
	res := download(t, ctx, getter, c.b.base+"/files/demo.bin", data)
	t.Logf("new getter on b: %d bytes from HTTP, %d from %d peers; new seeder on a uploaded %d",
		res.BytesFromHTTP, res.BytesFromPeers, res.PeersUsed, seeder.Uploaded())
	if res.BytesFromPeers <= 0 || seeder.Uploaded() <= 0 {
		t.Fatalf("after the restart: the getter on b got %d bytes from peers, the seeder on a uploaded %d; want some",
			res.BytesFromPeers, seeder.Uploaded())
	}

	res = download(t, ctx, getter, c.b.base+"/s2/demo.bin", old)
	t.Logf("getter on b, swarm of the old seeder: %d bytes from HTTP, %d from %d peers; old seeder uploaded %d",
		res.BytesFromHTTP, res.BytesFromPeers, res.PeersUsed, oldSeeder.Uploaded())
	if res.BytesFromPeers <= 0 || oldSeeder.Uploaded() <= 0 {
		t.Errorf("the seeder that joined before the outage was not introduced after it: the getter on b got %d bytes from peers, the seeder uploaded %d",
			res.BytesFromPeers, oldSeeder.Uploaded())
	}
}
