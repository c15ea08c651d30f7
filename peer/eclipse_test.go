package peer

import (
	"context"
	"testing"
	"time"
)

// idleJoiner joins a swarm at the coordinator and then does nothing: no
// offer, no answer, as an attacker's WebSocket-only connections would.
func idleJoiner(t *testing.T, ctx context.Context, o *origin, n int) {
	t.Helper()
	cc, err := DialCoordinator(ctx, o.srv.URL, CoordOptions{Dialer: fromNetwork(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	go func() { // keep reading, so the coordinator keeps it
		for range cc.Neighbours() {
		}
	}()
	go func() {
		for range cc.Signals() {
		}
	}()
	m := mustManifest(o.cur.Load())
	if err := cc.Join(ctx, m.ID, "", make([]bool, len(m.Blocks))); err != nil {
		t.Fatal(err)
	}
}

// Twelve idle joiners take all of a seeder's link slots at the
// coordinator. The seeder reports each of them unreachable when no offer
// comes, the coordinator frees the slots, and a downloader that arrives
// meanwhile still gets the file from the seeder (issue 14, item 6). Before
// the fix the seeder stayed hidden and the download came all by HTTP.
func TestIdleJoinersDoNotEclipseSeeder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(48 * testBlock)
	o := newCoordOrigin(t, newVersion(t, data, `"v1"`), 128<<10) // HTTP alone: about 12 s
	fast := func(opts *Options) { opts.ConnectTimeout = 3 * time.Second }
	seeder, _ := newCoordPeerFrom(t, ctx, o, 1, fast)
	seed(t, ctx, seeder, o.url(), data)
	for range 12 {
		idleJoiner(t, ctx, o, 9)
	}
	for o.coord.Stats().Members < 13 {
		select {
		case <-ctx.Done():
			t.Fatal("the idle joiners did not join")
		case <-time.After(10 * time.Millisecond):
		}
	}
	dl, _ := newCoordPeerFrom(t, ctx, o, 2, fast)
	dst := &checkedFile{t: t, want: data}
	res, err := dl.Download(ctx, o.url(), dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v; coordinator %+v", res, o.coord.Stats())
	if res.BytesFromPeers == 0 {
		t.Fatalf("nothing from the seeder: %d bytes by HTTP", res.BytesFromHTTP)
	}
}
