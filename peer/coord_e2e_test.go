package peer

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

// newCoordOrigin is an origin with a real coordinator at /_p2pxhr/ws, the
// way the Caddy module mounts it.
func newCoordOrigin(t *testing.T, v *version, bytesPerSec int) *origin {
	t.Helper()
	return newCoordOriginWith(t, v, bytesPerSec, coordinator.Config{})
}

// newCoordOriginWith is newCoordOrigin with a coordinator configured by
// cfg (KnownSwarm accepts every swarm unless set).
func newCoordOriginWith(t *testing.T, v *version, bytesPerSec int, cfg coordinator.Config) *origin {
	t.Helper()
	o := &origin{bytesPerSec: bytesPerSec}
	o.cur.Store(v)
	if cfg.KnownSwarm == nil {
		cfg.KnownSwarm = func(string) bool { return true }
	}
	coord, err := coordinator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", o.handler())
	mux.Handle("/_p2pxhr/ws", coord)
	o.srv = httptest.NewServer(mux)
	o.coord = coord
	t.Cleanup(func() {
		coord.Close()
		o.srv.Close()
	})
	return o
}

// fromNetwork dials the coordinator from 127.0.n.1, so the coordinator
// sees the peer on network 127.0.n.0/24: visitors of a real site come from
// many networks, and the coordinator weighs reports by network.
func fromNetwork(n int) *websocket.Dialer {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(n), 1)}
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second,
		NetDialContext: (&net.Dialer{LocalAddr: local}).DialContext}
}

// newCoordPeer is a Client signalling through the origin's coordinator
// from network 127.0.0.0/24.
func newCoordPeer(t *testing.T, ctx context.Context, o *origin, mod func(*Options)) (*Client, *CoordClient) {
	return newCoordPeerFrom(t, ctx, o, 0, mod)
}

// newCoordPeerFrom is newCoordPeer from network 127.0.n.0/24.
func newCoordPeerFrom(t *testing.T, ctx context.Context, o *origin, n int, mod func(*Options)) (*Client, *CoordClient) {
	t.Helper()
	cc, err := DialCoordinator(ctx, o.srv.URL, CoordOptions{HaveDelay: 20 * time.Millisecond, Dialer: fromNetwork(n)})
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, nil, "", func(opts *Options) {
		opts.Signaller = cc
		if mod != nil {
			mod(opts)
		}
	})
	return c, cc
}

func TestMaliciousPeerThroughCoordinator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(24 * testBlock)
	o := newCoordOrigin(t, newVersion(t, data, `"v1"`), 512<<10)
	// The liar holds the file and corrupts every block it sends. Every
	// victim asks it for something (it is the most useful neighbour on
	// paper), so every victim catches it. (A liar that stays silent for
	// blocks it lacks may be dropped as stalled first: reported
	// "unresponsive", which never bans; see TestStallingPeersAreDropped.)
	liar, liarSig := newCoordPeer(t, ctx, o, func(opts *Options) {
		opts.hooks = &testHooks{corrupt: func(int) bool { return true }}
	})
	seed(t, ctx, liar, o.url(), data)

	var wg sync.WaitGroup
	for v := range 2 { // on two networks: reports count by network
		victim, _ := newCoordPeerFrom(t, ctx, o, v+1, func(opts *Options) {
			opts.Scheduler.RequestTimeout = 2 * time.Second
		})
		dst := &checkedFile{t: t, want: data} // fails the test on any wrong byte
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := victim.Download(ctx, o.url(), dst)
			if err != nil {
				t.Errorf("victim %d: %v", v, err)
				return
			}
			if !bytes.Equal(dst.Bytes(), data) {
				t.Errorf("victim %d: content differs", v)
			}
			t.Logf("victim %d: %+v", v, res)
		}()
	}
	wg.Wait()

	// Reports travel on their own; wait until both have been applied.
	for deadline := time.Now().Add(10 * time.Second); o.coord.Stats().Bans < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the liar was not banned: %+v", o.coord.Stats())
		}
	}

	// The victims leave the swarm as their downloads end, but their leave
	// messages travel on their own: wait until only the liar is left, or a
	// victim could be the joiner's first neighbour.
	for deadline := time.Now().Add(10 * time.Second); o.coord.Stats().Members > 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the victims never left the swarm: %+v", o.coord.Stats())
		}
	}

	// Reported by two peers, the liar is introduced to no one any more: a
	// later joiner's first neighbour is the honest seeder that joins after
	// it, not the liar that was there all along.
	joiner, err := DialCoordinator(ctx, o.srv.URL, CoordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
	m := mustManifest(o.cur.Load())
	if err := joiner.Join(ctx, m.ID, "", make([]bool, len(m.Blocks))); err != nil {
		t.Fatal(err)
	}
	honest, honestSig := newCoordPeer(t, ctx, o, nil)
	seed(t, ctx, honest, o.url(), data)
	select {
	case in := <-joiner.Neighbours():
		if in.Peer == liarSig.ID() {
			t.Fatal("the coordinator still introduces the reported liar")
		}
		if in.Peer != honestSig.ID() {
			t.Fatalf("first introduction %+v, want the honest seeder", in)
		}
	case <-ctx.Done():
		t.Fatal("the joiner was never introduced to the honest seeder")
	}
}

func TestAlreadyInSwarm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(8 * testBlock)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 256<<10) // slow: the first download is still running
	hub := NewMemHub()
	c := newTestClient(t, hub, "c", nil)

	first := make(chan error, 1)
	go func() {
		_, err := c.Download(ctx, o.url(), &MemFile{})
		first <- err
	}()
	waitFor(t, ctx, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.swarms) > 0
	})
	if _, err := c.Download(ctx, o.url(), &MemFile{}); !errors.Is(err, ErrAlreadyInSwarm) {
		t.Errorf("second download of the same version: %v, want ErrAlreadyInSwarm", err)
	}
	if err := c.Seed(ctx, o.url(), bytes.NewReader(data)); !errors.Is(err, ErrAlreadyInSwarm) {
		t.Errorf("seeding what is being downloaded: %v, want ErrAlreadyInSwarm", err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	// Seeding, then downloading the same version, is refused the same way.
	stop := seed(t, ctx, c, o.url(), data)
	defer stop()
	if _, err := c.Download(ctx, o.url(), &MemFile{}); !errors.Is(err, ErrAlreadyInSwarm) {
		t.Errorf("downloading what is being seeded: %v, want ErrAlreadyInSwarm", err)
	}
}

// failingFile accepts writes up to limit bytes, then fails like a full disk.
type failingFile struct {
	MemFile
	mu      sync.Mutex
	written int
	limit   int
}

var errDiskFull = errors.New("no space left on device")

func (f *failingFile) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	full := f.written+len(p) > f.limit
	if !full {
		f.written += len(p)
	}
	f.mu.Unlock()
	if full {
		return 0, errDiskFull
	}
	return f.MemFile.WriteAt(p, off)
}

func TestWriteErrorEndsTheDownload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(8 * testBlock)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 0)
	c := newTestClient(t, nil, "", nil)
	_, err := c.Download(ctx, o.url(), &failingFile{limit: 3 * testBlock})
	if !errors.Is(err, ErrWrite) || !errors.Is(err, errDiskFull) {
		t.Fatalf("download onto a full disk: %v, want ErrWrite wrapping the OS error", err)
	}
}

// Sybils: several peers of one host that download from an honest seeder
// and then report it bad-block. The coordinator counts one network, the
// seeder is not banned, and a later joiner still gets it first. Before the
// fix two such reports banned any peer (issue 14, item 5).
func TestSybilsCannotBanSeederThroughCoordinator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(24 * testBlock)
	o := newCoordOrigin(t, newVersion(t, data, `"v1"`), 512<<10)
	seeder, seederSig := newCoordPeerFrom(t, ctx, o, 1, nil)
	seed(t, ctx, seeder, o.url(), data)

	for range 3 {
		sybil, _ := newCoordPeerFrom(t, ctx, o, 66, func(opts *Options) {
			opts.hooks = &testHooks{falseReport: reasonBadBlock}
		})
		if _, err := sybil.Download(ctx, o.url(), &MemFile{}); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); o.coord.Stats().Reports < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the sybils' reports did not arrive: %+v", o.coord.Stats())
		}
	}
	if st := o.coord.Stats(); st.Bans != 0 {
		t.Fatalf("sybils of one host banned the seeder: %+v", st)
	}
	joiner, err := DialCoordinator(ctx, o.srv.URL, CoordOptions{Dialer: fromNetwork(2)})
	if err != nil {
		t.Fatal(err)
	}
	defer joiner.Close()
	m := mustManifest(o.cur.Load())
	if err := joiner.Join(ctx, m.ID, "", make([]bool, len(m.Blocks))); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-joiner.Neighbours():
		if in.Peer != seederSig.ID() {
			t.Fatalf("first introduction %+v, want the seeder", in)
		}
	case <-ctx.Done():
		t.Fatal("the joiner was never introduced")
	}
}
