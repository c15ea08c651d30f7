package e2e

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/peer"
)

// TestTabReportsAnOfferEndedByPeerLeft: a neighbour that claims the whole
// file never answers the tab's offer and gives up on it (reports the tab);
// the coordinator tells the tab it left. The tab's attempt is a failed one
// (peer5.stats().connections.failed), at once, not silently dropped.
func TestTabReportsAnOfferEndedByPeerLeft(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "256KB/s", fileSize: "4MiB"})
	m := siteManifest(t, base, "/files/demo.bin")
	ghost := coordClientFrom(t, base, net.IPv4(127, 0, 9, 1)) // another network: it is introduced
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := slices.Repeat([]bool{true}, len(m.Blocks))
	if err := ghost.Join(ctx, m.ID, "", all); err != nil {
		t.Fatal(err)
	}

	tabCtx := tab(t, b, base+"/test/page.html")
	eval[bool](t, tabCtx, 5*time.Second, `(window.done = peer5.fetch('/files/demo.bin').then((r) => r.arrayBuffer()), true)`)
	var in peer.Introduction
	select {
	case in = <-ghost.Neighbours():
	case <-ctx.Done():
		t.Fatal("the tab was never introduced to the neighbour")
	}
	// The tab's offer arrives (and is never answered): its attempt is under way.
	select {
	case <-ghost.Signals():
	case <-ctx.Done():
		t.Fatal("the tab offered nothing")
	}
	go func() {
		for range ghost.Signals() {
		}
	}()
	ghost.Report(m.ID, in.Peer, "unreachable")
	start := time.Now()
	failed := poll[float64](t, tabCtx, 10*time.Second, `peer5.stats().connections.failed`)
	if time.Since(start) > 5*time.Second {
		t.Errorf("the failed attempt showed after %v, not when the neighbour left", time.Since(start))
	}
	t.Logf("connections failed: %v, after %v", failed, time.Since(start))
}
