package peer

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Peers that claim blocks and then decline, ignore or trickle the requests
// must not hold a download up: the victim drops and reports those that
// serve nothing useful within a request deadline, forgets their claims and
// takes the blocks over HTTP (issue 14, item 4). Before the fix the
// rejecting cases looped on request/reject for ever and the others crawled
// at a block or two per deadline, far past the test's bound.
func TestStallingPeersAreDropped(t *testing.T) {
	busy, other := protocol.RejectBusy, protocol.RejectOther
	cases := []struct {
		name   string
		hooks  testHooks
		report bool // must end up reported as unresponsive
	}{
		{"reject-busy", testHooks{claimAll: true, reject: &busy}, true},
		{"reject-other", testHooks{claimAll: true, reject: &other}, true},
		{"silent", testHooks{claimAll: true, silent: true}, true},
		{"trickle-past-deadline", testHooks{claimAll: true, trickle: 16 << 10}, true},
		// Honest bytes, just slow: it may stay, but must not set the pace.
		{"trickle-within-deadline", testHooks{trickle: 256 << 10}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			data := randomBytes(128 * testBlock)
			o := newOrigin(t, newVersion(t, data, `"v1"`), 4<<20)
			hub := NewMemHub()
			hooks := tc.hooks
			bad := newTestClient(t, hub, "bad", func(o *Options) { o.hooks = &hooks })
			seed(t, ctx, bad, o.url(), data)

			victim := newTestClient(t, hub, "victim", func(o *Options) {
				o.Scheduler.RequestTimeout = time.Second
			})
			dst := &checkedFile{t: t, want: data} // fails the test on any wrong byte
			res, err := victim.Download(ctx, o.url(), dst)
			if err != nil {
				t.Fatalf("download: %v (%+v)", err, res)
			}
			if !bytes.Equal(dst.Bytes(), data) {
				t.Fatal("content differs")
			}
			t.Logf("%+v", res)
			var reported bool
			for _, r := range hub.Reports() {
				if r.Peer == "bad" && r.From == "victim" && r.Reason == reasonUnresponsive {
					reported = true
				}
			}
			if tc.report && !reported {
				t.Errorf("the stalling peer was not reported unresponsive: %+v", hub.Reports())
			}
		})
	}
}
