package coordinator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

var (
	testSwarm  = strings.Repeat("5", 64)
	otherSwarm = strings.Repeat("6", 64)
)

// startServer runs a coordinator behind httptest; both stop at test end.
func startServer(t *testing.T, cfg Config, wrap func(http.Handler) http.Handler) (*Coordinator, string) {
	t.Helper()
	if cfg.KnownSwarm == nil {
		cfg.KnownSwarm = func(id string) bool { return id == testSwarm || id == otherSwarm }
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = c
	if wrap != nil {
		h = wrap(c)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		c.Close()
		srv.Close()
	})
	return c, "ws" + strings.TrimPrefix(srv.URL, "http")
}

type testClient struct {
	t  *testing.T
	ws *websocket.Conn
	id string
}

func dialRaw(t *testing.T, url string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, hdr)
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// dial connects and completes hello/welcome.
func dial(t *testing.T, url string) *testClient {
	t.Helper()
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, ws: ws}
	tc.send(&protocol.Hello{Version: protocol.CoordinatorVersion, Group: "a"})
	w, ok := tc.read().(*protocol.Welcome)
	if !ok || w.Limits.MaxNeighbours == 0 {
		t.Fatalf("no welcome: %#v", w)
	}
	tc.id = w.Peer
	return tc
}

func (tc *testClient) send(m protocol.CoordinatorMessage) {
	tc.t.Helper()
	b, err := protocol.EncodeCoordinatorMessage(m)
	if err != nil {
		tc.t.Fatal(err)
	}
	if err := tc.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *testClient) read() protocol.CoordinatorMessage {
	tc.t.Helper()
	tc.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := tc.ws.ReadMessage()
	if err != nil {
		tc.t.Fatalf("read: %v", err)
	}
	m, err := protocol.DecodeCoordinatorMessage(b)
	if err != nil {
		tc.t.Fatalf("server sent %s: %v", b, err)
	}
	return m
}

func (tc *testClient) join(swarm string) *protocol.Neighbours {
	tc.t.Helper()
	tc.send(&protocol.Join{Swarm: swarm, URL: "/big.bin", Blocks: 4, Bitfield: protocol.Bitfield{0}})
	n, ok := tc.read().(*protocol.Neighbours)
	if !ok {
		tc.t.Fatalf("join answered with %#v", n)
	}
	return n
}

func (tc *testClient) wantError(code string) {
	tc.t.Helper()
	if e, ok := tc.read().(*protocol.Error); !ok || e.Code != code {
		tc.t.Fatalf("want error %q, got %#v", code, e)
	}
}

// closeCode reads until the server closes and returns the close code.
func closeCode(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func TestJoinMatchRelay(t *testing.T) {
	coord, url := startServer(t, Config{}, nil)
	a := dial(t, url)
	if n := a.join(testSwarm); len(n.Peers) != 0 {
		t.Fatalf("first peer got neighbours %v", n.Peers)
	}
	b := dial(t, url)
	nb := b.join(testSwarm)
	if len(nb.Peers) != 1 || nb.Peers[0].ID != a.id || !nb.Peers[0].Offer {
		t.Fatalf("joiner got %+v, want to offer to a", nb.Peers)
	}
	na, ok := a.read().(*protocol.Neighbours)
	if !ok || len(na.Peers) != 1 || na.Peers[0].ID != b.id || na.Peers[0].Offer {
		t.Fatalf("a got %#v, want to answer b", na)
	}
	b.send(&protocol.Signal{Swarm: testSwarm, To: a.id, Kind: protocol.SignalOffer, Data: "v=0\r\n"})
	if s, ok := a.read().(*protocol.Signal); !ok || s.From != b.id || s.Kind != protocol.SignalOffer || s.Data != "v=0\r\n" {
		t.Fatalf("relayed offer %#v", s)
	}
	a.send(&protocol.Signal{Swarm: testSwarm, To: b.id, Kind: protocol.SignalCandidate, Data: "candidate:1 1 udp 1 127.0.0.1 9 typ host", Mid: "0"})
	if s, ok := b.read().(*protocol.Signal); !ok || s.From != a.id || s.Mid != "0" {
		t.Fatalf("relayed candidate %#v", s)
	}
	if relayed := coord.Stats().SignalsRelayed; relayed != 2 {
		t.Errorf("counted %d relayed signals, want 2", relayed)
	}
	// A third peer in another swarm cannot signal into this one.
	c := dial(t, url)
	c.join(otherSwarm)
	c.send(&protocol.Signal{Swarm: testSwarm, To: a.id, Kind: protocol.SignalOffer, Data: "v=0"})
	c.wantError(protocol.ErrCodeNotJoined)
	c.send(&protocol.Signal{Swarm: otherSwarm, To: a.id, Kind: protocol.SignalOffer, Data: "v=0"})
	c.wantError(protocol.ErrCodeNotIntroduced)
	// b leaving tells a.
	b.ws.Close()
	if p, ok := a.read().(*protocol.PeerLeft); !ok || p.Peer != b.id {
		t.Fatalf("a got %#v, want peer-left", p)
	}
}

func TestCrossOriginRefused(t *testing.T) {
	_, url := startServer(t, Config{AllowedOrigins: []string{"https://cdn.example"}}, nil)
	for origin, want := range map[string]int{
		"http://evil.example":  http.StatusForbidden,
		"null":                 http.StatusForbidden,
		"https://cdn.example":  http.StatusSwitchingProtocols,
		"https://cdn.example/": http.StatusForbidden, // an Origin never has a path
	} {
		_, resp, err := dialRaw(t, url, http.Header{"Origin": {origin}})
		if resp == nil {
			t.Fatalf("%s: %v", origin, err)
		}
		if resp.StatusCode != want {
			t.Errorf("Origin %s: status %d, want %d", origin, resp.StatusCode, want)
		}
	}
	// Same origin: the Origin's host is the request's Host.
	host := strings.TrimPrefix(url, "ws://")
	if _, resp, err := dialRaw(t, url, http.Header{"Origin": {"http://" + host}}); err != nil {
		t.Fatalf("same origin refused: %v %v", resp.Status, err)
	}
}

func TestUnknownSwarmRefused(t *testing.T) {
	_, url := startServer(t, Config{MaxSwarmsPerConn: 1}, nil)
	a := dial(t, url)
	a.send(&protocol.Join{Swarm: strings.Repeat("0", 64), Blocks: 1, Bitfield: protocol.Bitfield{0}})
	a.wantError(protocol.ErrCodeUnknownSwarm)
	a.join(testSwarm) // the connection carries on
	a.send(&protocol.Join{Swarm: otherSwarm, Blocks: 4, Bitfield: protocol.Bitfield{0}})
	a.wantError(protocol.ErrCodeTooManySwarms)
	a.send(&protocol.Have{Swarm: otherSwarm, Blocks: []int{1}})
	a.wantError(protocol.ErrCodeNotJoined)
}

func TestBadClientsClosedOthersCarryOn(t *testing.T) {
	c, url := startServer(t, Config{MessagesPerSecond: 5, MessageBurst: 20}, nil)
	good := dial(t, url)
	good.join(testSwarm)

	cases := []struct {
		name  string
		hello bool
		send  func(ws *websocket.Conn)
		code  int
	}{
		{"oversized", true, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave","swarm":"`+strings.Repeat("x", 70<<10)+`"}`))
		}, websocket.CloseMessageTooBig},
		{"malformed", true, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","swarm":`))
		}, websocket.CloseInvalidFramePayloadData},
		{"binary-garbage", true, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13, 0x37})
		}, websocket.CloseUnsupportedData},
		{"flood", true, func(ws *websocket.Conn) {
			for i := 0; i < 100; i++ {
				if ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"stats","swarm":"`+testSwarm+`","bytesFromHttp":0,"bytesFromPeers":0,"bytesUploaded":0}`)) != nil {
					return
				}
			}
		}, websocket.ClosePolicyViolation},
		{"no-hello", false, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"leave","swarm":"`+testSwarm+`"}`))
		}, websocket.ClosePolicyViolation},
		{"wrong-version", false, func(ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":99}`))
		}, websocket.ClosePolicyViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ws *websocket.Conn
			if tc.hello {
				ws = dial(t, url).ws
			} else {
				var err error
				if ws, _, err = dialRaw(t, url, nil); err != nil {
					t.Fatal(err)
				}
			}
			tc.send(ws)
			if code := closeCode(t, ws); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
			// The well-behaved client still works: a newcomer is matched with it.
			nc := dial(t, url)
			n := nc.join(otherSwarm)
			nc.send(&protocol.Leave{Swarm: otherSwarm})
			_ = n
			good.send(&protocol.Stats{Swarm: testSwarm, BytesFromHTTP: 1})
			good.send(&protocol.Signal{Swarm: testSwarm, To: nc.id, Kind: protocol.SignalOffer, Data: "v=0"})
			good.wantError(protocol.ErrCodeNotIntroduced)
		})
	}
	if st := c.Stats(); st.BytesFromHTTP != 1 {
		t.Fatalf("stats from the good client lost: %+v", st)
	}
}

// unwrapOnly is what Caddy hands a handler: Unwrap, but no Hijack.
type unwrapOnly struct{ http.ResponseWriter }

func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func TestWrappedResponseWriterUpgrades(t *testing.T) {
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(unwrapOnly{unwrapOnly{w}}, r)
		})
	}
	_, url := startServer(t, Config{}, wrap)
	dial(t, url).join(testSwarm)
}

func TestLoadHintBroadcast(t *testing.T) {
	loaded := make(chan bool, 1)
	loaded <- false
	state := false
	c, url := startServer(t, Config{LoadPollInterval: 10 * time.Millisecond, Loaded: func() bool {
		select {
		case state = <-loaded:
		default:
		}
		return state
	}}, nil)
	a := dial(t, url)
	loaded <- true
	if l, ok := a.read().(*protocol.Load); !ok || !l.Loaded {
		t.Fatalf("got %#v, want load true", l)
	}
	c.SetLoaded(false)
	if l, ok := a.read().(*protocol.Load); !ok || l.Loaded {
		t.Fatalf("got %#v, want load false", l)
	}
}

func TestHelloTimeoutAndIdleClose(t *testing.T) {
	c, url := startServer(t, Config{HelloTimeout: 100 * time.Millisecond}, nil)
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("silent client not closed")
	}
	if st := c.Stats(); st.Peers != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("missing KnownSwarm accepted")
	}
	known := func(string) bool { return true }
	if _, err := New(Config{KnownSwarm: known, MaxNeighbours: 100}); err == nil {
		t.Fatal("MaxNeighbours 100 accepted")
	}
	if _, err := New(Config{KnownSwarm: known, PongWait: time.Second, PingPeriod: 2 * time.Second}); err == nil {
		t.Fatal("PingPeriod past PongWait accepted")
	}
}

func TestSlowReaderDroppedOthersCarryOn(t *testing.T) {
	_, url := startServer(t, Config{SendQueue: 4, WriteWait: 500 * time.Millisecond,
		MessagesPerSecond: 100000, MessageBurst: 100000}, nil)
	slow := dial(t, url)
	slow.join(testSwarm)
	fast := dial(t, url)
	fast.join(testSwarm)
	slow.read() // its introduction to fast; from now on slow never reads

	left := make(chan struct{})
	go func() {
		defer close(left)
		for {
			fast.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, b, err := fast.ws.ReadMessage()
			if err != nil {
				return
			}
			if m, _ := protocol.DecodeCoordinatorMessage(b); m != nil {
				if p, ok := m.(*protocol.PeerLeft); ok && p.Peer == slow.id {
					return
				}
			}
		}
	}()
	sdp := strings.Repeat("a", protocol.MaxSDPSize)
	msg, _ := protocol.EncodeCoordinatorMessage(&protocol.Signal{Swarm: testSwarm, To: slow.id, Kind: protocol.SignalOffer, Data: sdp})
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-left:
			// Another client is served meanwhile.
			dial(t, url).join(otherSwarm)
			return
		case <-deadline:
			t.Fatal("slow reader never dropped")
		default:
		}
		if i < 20000 {
			fast.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := fast.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
				t.Fatal(err)
			}
		} else {
			select {
			case <-left:
			case <-deadline:
				t.Fatal("slow reader never dropped")
			}
		}
	}
}
