package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/protocol"
)

var testSwarmID = strings.Repeat("ab", 32)

// coordServer serves a real coordinator at /_p2pxhr/ws; swap replaces it
// (closing the old one, which drops its clients with 1001).
type coordServer struct {
	srv *httptest.Server
	cur atomic.Pointer[coordinator.Coordinator]
	cfg coordinator.Config
}

func newCoordServer(t *testing.T, cfg coordinator.Config) *coordServer {
	t.Helper()
	if cfg.KnownSwarm == nil {
		cfg.KnownSwarm = func(string) bool { return true }
	}
	cs := &coordServer{cfg: cfg}
	cs.swap(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/_p2pxhr/ws", func(w http.ResponseWriter, r *http.Request) { cs.cur.Load().ServeHTTP(w, r) })
	cs.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		cs.cur.Load().Close()
		cs.srv.Close()
	})
	return cs
}

func (cs *coordServer) swap(t *testing.T) {
	t.Helper()
	c, err := coordinator.New(cs.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if old := cs.cur.Swap(c); old != nil {
		old.Close()
	}
}

// logs collects a CoordClient's log lines for assertions.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logs) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

func dialCoord(t *testing.T, ctx context.Context, site string, opts CoordOptions) *CoordClient {
	t.Helper()
	c, err := DialCoordinator(ctx, site, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func nextIntro(t *testing.T, ctx context.Context, c *CoordClient) Introduction {
	t.Helper()
	select {
	case in := <-c.Neighbours():
		return in
	case <-ctx.Done():
		t.Fatal("no introduction")
	}
	return Introduction{}
}

func TestCoordClientJoinSignalLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newCoordServer(t, coordinator.Config{})
	opts := CoordOptions{HaveDelay: 10 * time.Millisecond, StatsInterval: 10 * time.Millisecond}
	a := dialCoord(t, ctx, cs.srv.URL, opts)
	b := dialCoord(t, ctx, cs.srv.URL, opts)
	if err := a.Join(ctx, testSwarmID, cs.srv.URL+"/_p2pxhr/manifest?url=%2Ff", []bool{true, true, false}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().Members == 1 })
	if err := b.Join(ctx, testSwarmID, "", make([]bool, 3)); err != nil {
		t.Fatal(err)
	}
	if in := nextIntro(t, ctx, b); in.Peer != a.ID() || !in.Offer || in.Swarm != testSwarmID {
		t.Fatalf("joiner got %+v, want an offer to %s", in, a.ID())
	}
	if in := nextIntro(t, ctx, a); in.Peer != b.ID() || in.Offer {
		t.Fatalf("member got %+v, want an answer role to %s", in, b.ID())
	}

	// A candidate goes out as its line and mid and comes back as the JSON
	// the peer side reads; an offer is relayed as is.
	cand := `{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}`
	if err := b.Send(ctx, a.ID(), Signal{Swarm: testSwarmID, Kind: SignalOffer, Data: "v=0 sdp"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, a.ID(), Signal{Swarm: testSwarmID, Kind: SignalCandidate, Data: cand}); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, a.ID(), Signal{Swarm: testSwarmID, Kind: SignalCandidate}); err != nil {
		t.Fatal(err)
	}
	var got []Signal
	for len(got) < 3 {
		select {
		case s := <-a.Signals():
			got = append(got, s)
		case <-ctx.Done():
			t.Fatalf("signals received: %+v", got)
		}
	}
	if got[0].Kind != SignalOffer || got[0].Data != "v=0 sdp" || got[0].From != b.ID() {
		t.Errorf("offer relayed as %+v", got[0])
	}
	var init struct {
		Candidate string `json:"candidate"`
		SDPMid    string `json:"sdpMid"`
	}
	if err := json.Unmarshal([]byte(got[1].Data), &init); err != nil || init.SDPMid != "0" || !strings.HasPrefix(init.Candidate, "candidate:1 ") {
		t.Errorf("candidate relayed as %q (%v)", got[1].Data, err)
	}
	if got[2].Kind != SignalCandidate || got[2].Data != "" {
		t.Errorf("end of candidates relayed as %+v", got[2])
	}

	// Haves and stats are batched and sent; stats count since join.
	b.Have(testSwarmID, []int{0, 1})
	b.Stats(testSwarmID, SwarmStats{FromHTTP: 100, FromPeers: 200, Uploaded: 5})
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().BytesFromPeers == 200 })

	// Leaving tells the neighbour, which sees the peer gone.
	b.Leave(testSwarmID)
	if in := nextIntro(t, ctx, a); in.Peer != b.ID() || !in.Gone {
		t.Fatalf("after leave the member got %+v", in)
	}
}

func TestCoordClientReconnectsAndRejoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newCoordServer(t, coordinator.Config{})
	c := dialCoord(t, ctx, cs.srv.URL, CoordOptions{MinBackoff: 10 * time.Millisecond, StatsInterval: 10 * time.Millisecond, HaveDelay: 10 * time.Millisecond})
	if err := c.Join(ctx, testSwarmID, "", make([]bool, 4)); err != nil {
		t.Fatal(err)
	}
	c.Stats(testSwarmID, SwarmStats{FromHTTP: 1000})
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().BytesFromHTTP == 1000 })
	first := c.ID()

	cs.swap(t) // the old coordinator goes away with 1001
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().Members == 1 })
	if id := c.ID(); id == first || id == "" {
		t.Fatalf("peer id after reconnect %q (was %q)", id, first)
	}
	// The new membership counts only what the old one was not told.
	c.Stats(testSwarmID, SwarmStats{FromHTTP: 1500})
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().BytesFromHTTP == 500 })
}

func TestCoordClientKeepsUnderRateLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newCoordServer(t, coordinator.Config{MessagesPerSecond: 40, MessageBurst: 10})
	var l logs
	c := dialCoord(t, ctx, cs.srv.URL, CoordOptions{Logf: l.logf})
	if err := c.Join(ctx, testSwarmID, "", make([]bool, 4)); err != nil {
		t.Fatal(err)
	}
	id := c.ID()
	stranger := strings.Repeat("cd", 32)
	const n = 60 // three times the burst: sent all at once it would trip the limit
	for range n {
		if err := c.Send(ctx, stranger, Signal{Swarm: testSwarmID, Kind: SignalOffer, Data: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// Each one is refused as not introduced, none for the rate.
	waitFor(t, ctx, func() bool { return l.count("not-introduced") == n })
	if l.count("rate-limited") != 0 || c.ID() != id {
		t.Fatalf("rate limit tripped: %v", l.lines)
	}
}

func TestCoordClientDropsASilentServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A server that welcomes and then never reads again, so our pings go
	// unanswered.
	var conns atomic.Int32
	hold := make(chan struct{})
	var wg sync.WaitGroup
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer ws.Close()
		conns.Add(1)
		ws.ReadMessage()
		b, _ := protocol.EncodeCoordinatorMessage(&protocol.Welcome{Version: 1, Peer: strings.Repeat("0", 64)})
		ws.WriteMessage(websocket.TextMessage, b)
		<-hold
	}))
	defer func() { close(hold); wg.Wait(); srv.Close() }()
	c := dialCoord(t, ctx, srv.URL, CoordOptions{PingPeriod: 20 * time.Millisecond, PongWait: 150 * time.Millisecond, MinBackoff: 10 * time.Millisecond})
	waitFor(t, ctx, func() bool { return conns.Load() >= 2 })
	c.Close()
}

func TestCoordClientUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := NewCoordClient("http://"+addr, CoordOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Join(ctx, testSwarmID, "", make([]bool, 2)); err != nil {
		t.Errorf("join while disconnected: %v", err)
	}
	if err := c.Send(ctx, strings.Repeat("cd", 32), Signal{Swarm: testSwarmID, Kind: SignalOffer, Data: "x"}); err != ErrNotConnected {
		t.Errorf("send while disconnected: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	if err := c.WaitConnected(short); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("WaitConnected: %v", err)
	}
	if _, err := NewCoordClient("ftp://x", CoordOptions{}); err == nil {
		t.Error("an ftp site was accepted")
	}
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

// A Go peer joining with every block (Seed) will not download: it joins as
// a seeder, also again after a reconnect, and the coordinator counts it so.
func TestCoordClientJoinsWholeCopiesAsSeeder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs := newCoordServer(t, coordinator.Config{})
	c := dialCoord(t, ctx, cs.srv.URL, CoordOptions{MinBackoff: 10 * time.Millisecond})
	d := dialCoord(t, ctx, cs.srv.URL, CoordOptions{})
	if err := c.Join(ctx, testSwarmID, "", []bool{true, true, true}); err != nil {
		t.Fatal(err)
	}
	if err := d.Join(ctx, testSwarmID, "", []bool{true, false, false}); err != nil {
		t.Fatal(err)
	}
	seeding := func() coordinator.SeedingStats { return cs.cur.Load().Stats().Seeding }
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().Members == 2 })
	if s := seeding(); s.Members != 1 || s.Peers != 1 {
		t.Fatalf("seeding %+v, want the whole copy's peer alone", s)
	}
	cs.swap(t)
	waitFor(t, ctx, func() bool { return cs.cur.Load().Stats().Members == 2 })
	if s := seeding(); s.Members != 1 {
		t.Fatalf("after reconnecting: seeding %+v, want one seeder", s)
	}
}
