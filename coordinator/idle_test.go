package coordinator

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// maskedFrame is one client-to-server text frame, masked as RFC 6455 asks.
func maskedFrame(payload []byte) []byte {
	f := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126, 0, 0)
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	return f
}

// Frames that reach the server in one TCP segment sit in the connection's
// read buffer after the first is read: the read pump must handle them
// without waiting for more input from the socket.
func TestFramesArrivingTogetherAreAllHandled(t *testing.T) {
	_, url := startServer(t, Config{HelloTimeout: time.Minute, PongWait: time.Minute}, nil)
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, _ := protocol.EncodeCoordinatorMessage(&protocol.Hello{Version: protocol.CoordinatorVersion})
	join, _ := protocol.EncodeCoordinatorMessage(&protocol.Join{Swarm: testSwarm, Blocks: 4, Bitfield: protocol.Bitfield{0}})
	segment := append(maskedFrame(hello), maskedFrame(join)...)
	if len(segment) > readBufferSize {
		t.Fatalf("%d bytes do not fit in one read of the server's buffer", len(segment))
	}
	if _, err := ws.NetConn().Write(segment); err != nil {
		t.Fatal(err)
	}
	tc := &testClient{t: t, ws: ws}
	if _, ok := tc.read().(*protocol.Welcome); !ok {
		t.Fatal("no welcome")
	}
	if n, ok := tc.read().(*protocol.Neighbours); !ok || n.Swarm != testSwarm {
		t.Fatalf("join answered with %#v", n)
	}
}

// The server pings an idle client often enough that a client which
// answers is never closed as silent, and closes one that does not answer.
func TestIdleClientPingedAndKept(t *testing.T) {
	_, url := startServer(t, Config{PongWait: time.Second, PingPeriod: 200 * time.Millisecond}, nil)
	a := dial(t, url)
	var pings atomic.Int32
	a.ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return a.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	a.join(testSwarm)
	quiet := dial(t, url)
	quiet.ws.SetPingHandler(func(string) error { return nil }) // never answers

	// a sends nothing for three PongWaits: only its pongs keep it open,
	// and then it is still introduced to a newcomer.
	got := make(chan protocol.CoordinatorMessage, 1)
	go func() {
		a.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, b, err := a.ws.ReadMessage(); err != nil {
			got <- &protocol.Error{Message: err.Error()}
		} else {
			m, _ := protocol.DecodeCoordinatorMessage(b)
			got <- m
		}
	}()
	time.Sleep(3 * time.Second)
	dial(t, url).join(testSwarm)
	if n, ok := (<-got).(*protocol.Neighbours); !ok || len(n.Peers) != 1 {
		t.Fatalf("idle client answering pings: got %#v, want an introduction", n)
	}
	if n := pings.Load(); n < 3 {
		t.Fatalf("%d pings in 3 s at a 200 ms period", n)
	}

	var ce *websocket.CloseError
	quiet.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := quiet.ws.ReadMessage(); !errors.As(err, &ce) {
		t.Fatalf("client not answering pings: %v, want closed by the server", err)
	}
}
