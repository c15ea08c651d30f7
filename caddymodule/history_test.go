package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestUsageHistoryBooksGrowthPerSlot(t *testing.T) {
	h := newUsageHistory(10*time.Second, 6)
	t0 := time.Unix(1000, 0)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	h.observe(at(0), usageSample{FromPeers: 500, FromHTTP: 100, Origin: 900, Peers: 1})
	h.observe(at(2), usageSample{FromPeers: 800, FromHTTP: 150, Origin: 1000, Peers: 3, Swarms: 1})
	h.observe(at(12), usageSample{FromPeers: 900, FromHTTP: 150, Origin: 1000, Peers: 2, Swarms: 1})
	// A reload: the new coordinator counts from zero again.
	h.observe(at(22), usageSample{FromPeers: 40, FromHTTP: 10, Origin: 1200, Peers: 1})
	h.observe(at(24), usageSample{FromPeers: 100, FromHTTP: 10, Origin: 1200, Peers: 1})

	got := h.since(at(25), 0)
	want := []historyPoint{
		{T: 1000000, FromPeers: 300, FromHTTP: 50, Origin: 100, Peers: 3, Swarms: 1}, // the first sample only sets the base
		{T: 1010000, FromPeers: 100, Peers: 2, Swarms: 1},
		{T: 1020000, FromPeers: 60, Origin: 200, Peers: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("history %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("slot %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := h.since(at(25), 1010000); len(s) != 2 || s[0].T != 1010000 {
		t.Errorf("since the second slot: %+v", s)
	}

	// Past the ring's length, old slots are overwritten and not returned.
	h.observe(at(75), usageSample{FromPeers: 130, Origin: 1200})
	s := h.since(at(75), 0)
	if len(s) != 2 || s[0].T != 1020000 || s[1].T != 1070000 || s[1].FromPeers != 30 {
		t.Errorf("after wrapping: %+v", s)
	}
	if s := h.since(at(1000), 0); len(s) != 0 {
		t.Errorf("an hour later: %+v, want nothing", s)
	}
}

func TestStatsServeTheHistory(t *testing.T) {
	root := t.TempDir()
	data := randomBytes(400<<10, 45)
	os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644)
	base := startCaddy(t, "p2pxhr {\n dashboard\n}\nroot * "+root+"\nfile_server")
	get(t, base+"/f.bin")
	// The sampler books the origin's bytes within a sample period.
	var h historyReport
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, base+"/_p2pxhr/dashboard/stats?history=0")
		var s statsReport
		if err := json.Unmarshal(body, &s); err != nil || s.History == nil {
			t.Fatalf("stats?history=0: %v, %s", err, body)
		}
		h = *s.History
		var origin int64
		for _, p := range h.Points {
			origin += p.Origin
		}
		if origin == int64(len(data)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history %+v: origin bytes never reached %d", h, len(data))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if h.SlotSeconds != 10 {
		t.Errorf("slotSeconds %d, want 10", h.SlotSeconds)
	}
	last := h.Points[len(h.Points)-1].T
	_, body := get(t, base+"/_p2pxhr/dashboard/stats?history="+strconv.FormatInt(last, 10))
	var s statsReport
	json.Unmarshal(body, &s)
	if s.History == nil || len(s.History.Points) == 0 || s.History.Points[0].T != last {
		t.Errorf("stats?history=%d: %s; want the points from that slot on", last, body)
	}
	if _, body := get(t, base+"/_p2pxhr/dashboard/stats"); bytes.Contains(body, []byte(`"history"`)) {
		t.Errorf("stats without ?history carry it: %s", body)
	}
	if res, _ := get(t, base+"/_p2pxhr/dashboard/stats?history=yesterday"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("stats?history=yesterday: %d, want 400", res.StatusCode)
	}
}
