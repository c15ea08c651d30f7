package peer

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// maxRejoins bounds how often one connection fetches a swarm's manifest
// again and rejoins after the coordinator said it does not know the swarm.
const maxRejoins = 5

// rejoinLater answers unknown-swarm for a swarm this client is in. The
// coordinator opens swarms only for manifests its server has built, and a
// restarted server builds them on demand, so the manifest is fetched again
// (which builds it) and, if it still names this swarm, the client joins
// again on the same connection, after a back-off. A manifest with another
// id means the file changed: downloads notice that by themselves, and the
// swarm is not rejoined.
func (c *CoordClient) rejoinLater(sess *coordSession, id string) {
	c.mu.Lock()
	s := c.swarms[id]
	if s == nil || s.url == "" || c.closed {
		c.mu.Unlock()
		return
	}
	if s.rejoinSess != sess {
		s.rejoinSess, s.rejoins = sess, 0
	}
	if s.rejoining || s.rejoins >= maxRejoins {
		c.mu.Unlock()
		return
	}
	s.rejoining = true
	s.rejoins++
	wait := min(c.opts.MinBackoff<<(s.rejoins-1), c.opts.MaxBackoff)
	wait += rand.N(wait/2 + 1) // a restarted server is not hit by every peer at once
	resource := c.origin + s.url
	c.mu.Unlock()

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		same := false
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
		case <-t.C:
			m, err := FetchManifest(c.ctx, c.opts.HTTPClient, resource, c.opts.Prefix)
			switch {
			case err != nil:
				c.opts.Logf("p2pxhr: fetching the manifest of %s again: %v", resource, err)
			case m.ID != id:
				c.opts.Logf("p2pxhr: %s changed (swarm %.8s…, was %.8s…); not rejoining", resource, m.ID, id)
			default:
				same = true
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		s.rejoining = false
		if !same || c.swarms[id] != s || c.sess != sess || s.joined {
			return
		}
		s.pending, s.base = nil, s.sent
		s.joined = sess.enqueue(&protocol.Join{Swarm: id, URL: s.url, Blocks: s.blocks, Bitfield: slices.Clone(s.have)})
		c.opts.Logf("p2pxhr: rejoining swarm %.8s… after its manifest was built again", id)
	}()
}
