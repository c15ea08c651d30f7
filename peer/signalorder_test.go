package peer

import (
	"github.com/p2pxhr/p2pxhr/protocol"
	"sync"
	"testing"
	"time"
)

// nopHandler is a connHandler that ignores everything.
type nopHandler struct{}

func (nopHandler) connOpen(*conn)                          {}
func (nopHandler) connMessage(*conn, protocol.WireMessage) {}
func (nopHandler) connClosed(*conn)                        {}
func (nopHandler) connTimedOut(*conn)                      {}

// The offer must leave before any of the offerer's candidates: the other
// side creates its connection on the offer and drops candidates from a
// peer it has no connection to. A Chromium answerer has only mDNS host
// candidates a pion peer cannot resolve, so losing pion's candidates meant
// a connection that never opened (issue 14, item 11).
func TestOfferGoesBeforeCandidates(t *testing.T) {
	rtc, err := newRTCStack(RTCConfig{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtc.close()
	var wg goroutines
	for i := range 40 {
		pc, err := rtc.newPeerConnection(nil)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var kinds []string
		ended := make(chan struct{})
		c := newConn(pc, "remote", "swarm", nopHandler{}, nil, &wg, time.Minute)
		c.sendSig = func(kind, data string) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, kind)
			if kind == SignalCandidate && data == "" {
				close(ended)
			}
		}
		if err := c.offer(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("gathering did not end")
		}
		c.close()
		mu.Lock()
		if len(kinds) == 0 || kinds[0] != SignalOffer {
			t.Fatalf("connection %d sent %v: a candidate before the offer", i, kinds)
		}
		mu.Unlock()
	}
	wg.Wait()
}
