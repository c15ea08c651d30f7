package p2pxhr

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/peer"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// `get` against a peer that claims every block and then declines, ignores
// or trickles every request, behind the real module: the download
// completes over HTTP, taking the peer's blocks from its first missed
// deadline (8 s) on; a peer declining everything is dropped and reported at
// once. (Silent and trickling peers are dropped after two deadlines, by
// which time this download is over: TestStallingPeersAreDropped in peer/
// checks that part.) Before the fix the rejecting peers held `get` for
// ever (it sat at 37 % for 45 s in the report of issue 14) and the others
// let it crawl at a block or two per deadline.
func TestGetAgainstStallingPeers(t *testing.T) {
	cases := []struct {
		name   string
		m      peer.Misbehaviour
		report bool
	}{
		{"reject-busy", peer.Misbehaviour{ClaimAll: true, Reject: true, RejectReason: protocol.RejectBusy}, true},
		{"reject-other", peer.Misbehaviour{ClaimAll: true, Reject: true, RejectReason: protocol.RejectOther}, true},
		{"silent", peer.Misbehaviour{ClaimAll: true, Silent: true}, false},
		{"trickle", peer.Misbehaviour{ClaimAll: true, Trickle: 4 << 10}, false}, // a 64 KiB block in 16 s
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			data := randomData(4 << 20)
			base, _ := site(t, "p2pxhr {\n block_size 64KiB\n http_rate_limit 2MB\n dashboard\n}\nfile_server", map[string][]byte{"big.bin": data})
			url := base + "/big.bin"

			sig, err := peer.NewCoordClient(base, peer.CoordOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bad, err := peer.NewMisbehaving(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}}, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Close()
			go bad.Seed(ctx, url, bytes.NewReader(data))
			waitFor(t, ctx, "the attacker to join", func() bool { return stats(t, base).Members == 1 })

			out := filepath.Join(t.TempDir(), "big.bin")
			r := getCmd(t, ctx, url, "-o", out)
			if r.code != 0 {
				t.Fatalf("get: exit %d: %v\n%s", r.code, r.err, r.stderr)
			}
			checkFile(t, out, data)
			if tc.report {
				waitFor(t, ctx, "the attacker to be reported", func() bool { return stats(t, base).Reports >= 1 })
			}
		})
	}
}
