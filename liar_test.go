package p2pxhr

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/p2pxhr/p2pxhr/peer"
)

// bans reads how many peers the site's coordinator banned.
func bans(t *testing.T, base string) int64 {
	t.Helper()
	res, err := http.Get(base + "/_p2pxhr/dashboard/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s struct {
		Swarm struct {
			Bans int64 `json:"bans"`
		} `json:"swarm"`
	}
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s.Swarm.Bans
}

// A peer that claims every block and sends wrong bytes, in a swarm behind
// the real module: every getter writes the right file. The two getters run
// on one host, so their reports count as one network and do not ban; the
// report of a victim on another network does.
func TestLyingPeerThroughCaddy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomData(1 << 20)
	base, _ := site(t, loadedModule, map[string][]byte{"big.bin": data})
	url := base + "/big.bin"

	sig, err := peer.NewCoordClient(base, peer.CoordOptions{})
	if err != nil {
		t.Fatal(err)
	}
	liar, err := peer.NewMisbehaving(peer.Options{Signaller: sig, RTC: peer.RTCConfig{Loopback: true}},
		peer.Misbehaviour{Corrupt: func(int) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer liar.Close()
	go liar.Seed(ctx, url, bytes.NewReader(data))
	waitFor(t, ctx, "the liar to join", func() bool { return stats(t, base).Members == 1 })

	dir := t.TempDir()
	for g, r := range runGetters(t, ctx, url, dir, 2) {
		if r.code != 0 {
			t.Fatalf("getter %d: exit %d: %v\n%s", g, r.code, r.err, r.stderr)
		}
		checkFile(t, filepath.Join(dir, "out"+strconv.Itoa(g)), data)
	}
	waitFor(t, ctx, "the getters' reports", func() bool { return stats(t, base).Reports >= 2 })
	if n := bans(t, base); n != 0 {
		t.Fatalf("two getters of one host banned the liar (%d bans): one host is one witness", n)
	}

	// A victim on another network (127.0.1.0/24).
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 1, 1)}
	vsig, err := peer.NewCoordClient(base, peer.CoordOptions{Dialer: &websocket.Dialer{
		NetDialContext: (&net.Dialer{LocalAddr: local}).DialContext}})
	if err != nil {
		t.Fatal(err)
	}
	victim, err := peer.New(peer.Options{Signaller: vsig, RTC: peer.RTCConfig{Loopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var out peer.MemFile
	if _, err := victim.Download(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the victim's copy differs")
	}
	waitFor(t, ctx, "the liar to be banned", func() bool { return bans(t, base) >= 1 })
}
