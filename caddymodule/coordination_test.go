package caddymodule

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// wsPeer is a coordinator client speaking the protocol by hand.
type wsPeer struct {
	t    *testing.T
	conn *websocket.Conn
	id   string
}

func dialCoordinator(t *testing.T, base, origin string) (*websocket.Conn, *http.Response, error) {
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(base, "http")+"/_p2pxhr/ws", hdr)
}

func newWSPeer(t *testing.T, base string) *wsPeer {
	t.Helper()
	conn, _, err := dialCoordinator(t, base, base)
	if err != nil {
		t.Fatalf("dialing the coordinator: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &wsPeer{t: t, conn: conn}
	p.send(&protocol.Hello{Version: protocol.CoordinatorVersion})
	welcome, ok := p.recv().(*protocol.Welcome)
	if !ok {
		t.Fatal("first message is not welcome")
	}
	p.id = welcome.Peer
	return p
}

func (p *wsPeer) send(m protocol.CoordinatorMessage) {
	p.t.Helper()
	b, err := protocol.EncodeCoordinatorMessage(m)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

func (p *wsPeer) recv() protocol.CoordinatorMessage {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := p.conn.ReadMessage()
	if err != nil {
		p.t.Fatalf("recv: %v", err)
	}
	m, err := protocol.DecodeCoordinatorMessage(b)
	if err != nil {
		p.t.Fatalf("decoding %s: %v", b, err)
	}
	return m
}

// recvType reads until a message of the given type arrives.
func (p *wsPeer) recvType(typ string) protocol.CoordinatorMessage {
	p.t.Helper()
	for {
		if m := p.recv(); m.CoordinatorType() == typ {
			return m
		}
	}
}

// closedWith reads until the server closes the connection and returns the
// close code.
func closedWith(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func shareableSite(t *testing.T) (base string, m *protocol.Manifest) {
	return shareableSiteWith(t, "")
}

// shareableSiteWith is shareableSite with more directives in the site.
func shareableSiteWith(t *testing.T, more string) (base string, m *protocol.Manifest) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f.bin"), randomBytes(600<<10, 31), 0o644); err != nil {
		t.Fatal(err)
	}
	base = startCaddy(t, more+"\np2pxhr\nroot * "+root+"\nfile_server")
	_, m = fetchManifest(t, base, "/f.bin")
	if m == nil {
		t.Fatal("no manifest")
	}
	return base, m
}

func TestCoordinatorMatchesAndRelaysThroughCaddy(t *testing.T) {
	base, m := shareableSite(t)
	seeder, getter := newWSPeer(t, base), newWSPeer(t, base)

	full := protocol.NewBitfield(len(m.Blocks))
	for i := range m.Blocks {
		full.Set(i)
	}
	seeder.send(&protocol.Join{Swarm: m.ID, URL: m.URL, Blocks: len(m.Blocks), Bitfield: full})
	if n := seeder.recvType(protocol.TypeNeighbours).(*protocol.Neighbours); len(n.Peers) != 0 {
		t.Fatalf("the first peer got neighbours %v", n.Peers)
	}
	getter.send(&protocol.Join{Swarm: m.ID, URL: m.URL, Blocks: len(m.Blocks), Bitfield: protocol.NewBitfield(len(m.Blocks))})
	got := getter.recvType(protocol.TypeNeighbours).(*protocol.Neighbours)
	if len(got.Peers) != 1 || got.Peers[0].ID != seeder.id {
		t.Fatalf("the getter was offered %v, want the seeder %s", got.Peers, seeder.id)
	}
	told := seeder.recvType(protocol.TypeNeighbours).(*protocol.Neighbours)
	if len(told.Peers) != 1 || told.Peers[0].ID != getter.id || told.Peers[0].Offer == got.Peers[0].Offer {
		t.Fatalf("the seeder was told %v; exactly one side must offer", told.Peers)
	}
	offerer, answerer := getter, seeder
	if told.Peers[0].Offer {
		offerer, answerer = seeder, getter
	}
	offerer.send(&protocol.Signal{Swarm: m.ID, To: answerer.id, Kind: protocol.SignalOffer, Data: "v=0\r\n"})
	sig := answerer.recvType(protocol.TypeSignal).(*protocol.Signal)
	if sig.From != offerer.id || sig.Kind != protocol.SignalOffer || sig.Data != "v=0\r\n" {
		t.Fatalf("relayed %+v", sig)
	}
}

func TestCoordinatorRefusesWhatItShould(t *testing.T) {
	base, m := shareableSite(t)

	t.Run("cross-origin", func(t *testing.T) {
		_, res, err := dialCoordinator(t, base, "http://evil.example")
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin dial: %v, %v", err, res)
		}
	})
	t.Run("unknown swarm", func(t *testing.T) {
		p := newWSPeer(t, base)
		unknown := strings.Repeat("ab", 32)
		p.send(&protocol.Join{Swarm: unknown, Blocks: 3, Bitfield: protocol.NewBitfield(3)})
		e, ok := p.recvType(protocol.TypeError).(*protocol.Error)
		if !ok || e.Swarm != unknown {
			t.Fatalf("got %+v", e)
		}
	})

	// Each bad client is closed with a proper code; a good client on the
	// same server keeps working throughout.
	good := newWSPeer(t, base)
	good.send(&protocol.Join{Swarm: m.ID, URL: m.URL, Blocks: len(m.Blocks), Bitfield: protocol.NewBitfield(len(m.Blocks))})
	good.recvType(protocol.TypeNeighbours)

	bad := []struct {
		name string
		send func(c *websocket.Conn)
		code int
	}{
		{"oversized", func(c *websocket.Conn) {
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","version":1,"group":"`+strings.Repeat("x", 70<<10)+`"}`))
		}, websocket.CloseMessageTooBig},
		{"malformed", func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(`{"type":`)) }, websocket.CloseInvalidFramePayloadData},
		{"binary garbage", func(c *websocket.Conn) { c.WriteMessage(websocket.BinaryMessage, []byte{0xff, 0x00, 0x13}) }, websocket.CloseUnsupportedData},
		{"flooding", func(c *websocket.Conn) {
			hello, _ := protocol.EncodeCoordinatorMessage(&protocol.Hello{Version: protocol.CoordinatorVersion})
			c.WriteMessage(websocket.TextMessage, hello)
			join, _ := protocol.EncodeCoordinatorMessage(&protocol.Join{Swarm: m.ID, Blocks: len(m.Blocks), Bitfield: protocol.NewBitfield(len(m.Blocks))})
			c.WriteMessage(websocket.TextMessage, join)
			// Have-updates get no answer, so only the rate limit can stop them.
			have, _ := protocol.EncodeCoordinatorMessage(&protocol.Have{Swarm: m.ID, Blocks: []int{1}})
			for range 2000 {
				if c.WriteMessage(websocket.TextMessage, have) != nil {
					return
				}
			}
		}, websocket.ClosePolicyViolation},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			conn, _, err := dialCoordinator(t, base, base)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			b.send(conn)
			if code := closedWith(t, conn); code != b.code {
				t.Errorf("closed with %d, want %d", code, b.code)
			}
			// The well-behaved client is still served.
			good.send(&protocol.Have{Swarm: m.ID, Blocks: []int{0}})
			good.send(&protocol.Join{Swarm: strings.Repeat("cd", 32), Blocks: 1, Bitfield: protocol.NewBitfield(1)})
			good.recvType(protocol.TypeError)
		})
	}
}
