package peer

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/turn/v5"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// countingConn counts the datagrams a STUN server receives.
type countingConn struct {
	net.PacketConn
	n atomic.Int64
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.n.Add(1)
	}
	return n, a, err
}

// A Go peer uses the ICE servers the coordinator's welcome names (here a
// STUN server that counts its requests) without being told any itself,
// and the offering side reports how each attempt ended: the coordinator
// counts it by the selected pair's path.
func TestGoPeerUsesWelcomeICEServersAndReportsOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stunConn := &countingConn{PacketConn: udp}
	stun, err := turn.NewServer(turn.ServerConfig{PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: stunConn}}})
	if err != nil {
		t.Fatal(err)
	}
	defer stun.Close()
	stunURL := "stun:" + udp.LocalAddr().String()

	data := randomBytes(16 * testBlock)
	// A slow origin: the seeder must matter.
	o := newCoordOriginWith(t, newVersion(t, data, `"v1"`), 256<<10, coordinator.Config{
		ICEServers: func(*http.Request) []protocol.ICEServer {
			return []protocol.ICEServer{{URLs: []string{stunURL}}}
		}})
	coord := o.coord

	seeder, seederSig := newCoordPeer(t, ctx, o, nil)
	if got := seederSig.ICEServers(); len(got) != 1 || got[0].URLs[0] != stunURL {
		t.Fatalf("ICE servers from the welcome: %+v", got)
	}
	seed(t, ctx, seeder, o.url(), data)

	var mu sync.Mutex
	var outcomes []ConnectionOutcome
	downloader, _ := newCoordPeer(t, ctx, o, func(opts *Options) {
		opts.OnConnection = func(c ConnectionOutcome) {
			mu.Lock()
			outcomes = append(outcomes, c)
			mu.Unlock()
		}
	})
	dst := &checkedFile{t: t, want: data}
	res, err := downloader.Download(ctx, o.url(), dst)
	if err != nil || !bytes.Equal(dst.Bytes(), data) {
		t.Fatalf("download: %v", err)
	}
	if res.BytesFromPeers == 0 {
		t.Fatalf("nothing from the seeder: %+v", res)
	}
	mu.Lock()
	got := append([]ConnectionOutcome(nil), outcomes...)
	mu.Unlock()
	if len(got) != 1 || !got[0].Connected || got[0].Path == "" || got[0].Peer == "" {
		t.Fatalf("outcomes %+v, want one connected attempt with a path", got)
	}
	if stunConn.n.Load() == 0 {
		t.Error("the welcome's STUN server got no binding request")
	}
	waitFor(t, ctx, func() bool { return coord.Stats().Connections.Connected[got[0].Path] == 1 })
	if st := coord.Stats().Connections; st.Failed != 0 || len(st.Connected) != 1 {
		t.Fatalf("coordinator counted %+v, want the one attempt once", st)
	}
}

// An attempt this peer offered that ends because the other side left (or
// gave up on it: the coordinator then tells this side it left) before the
// channel opened is reported failed, not dropped: the operators' count of
// failed connections, and a caller waiting for each attempt's outcome,
// must see it. Without the report, it ended without one.
func TestOfferEndedByPeerLeftIsReportedFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(16 * testBlock)
	v := newVersion(t, data, `"v1"`)
	o := newOrigin(t, v, 64<<10) // slow: the download outlives the attempt
	id := mustManifest(v).ID
	hub := NewMemHub()
	// A member that never answers.
	ghost := hub.Connect("ghost")
	if err := ghost.Join(ctx, id, o.url(), make([]bool, len(mustManifest(v).Blocks))); err != nil {
		t.Fatal(err)
	}
	outcomes := make(chan ConnectionOutcome, 4)
	a := newTestClient(t, hub, "a", func(opts *Options) {
		opts.OnConnection = func(c ConnectionOutcome) { outcomes <- c }
	})
	go a.Download(ctx, o.url(), &MemFile{})
	waitFor(t, ctx, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		s := a.swarms[id]
		if s == nil {
			return false
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conns["ghost"] != nil
	})
	hub.peers["a"].deliver(Introduction{Swarm: id, Peer: "ghost", Gone: true})
	select {
	case c := <-outcomes:
		if c.Connected || c.Peer != "ghost" {
			t.Fatalf("outcome %+v, want a failed attempt at ghost", c)
		}
	case <-time.After(5 * time.Second): // well before the 15 s connect timeout
		t.Fatal("the attempt ended with no outcome")
	}
}
