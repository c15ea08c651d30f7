package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeJSON writes a JSON document of about n bytes: big enough to be
// shared (over min_size) or small enough to be delegated.
func writeJSON(t *testing.T, dir, name string, n int) {
	t.Helper()
	var items []map[string]any
	for size := 0; size < n; size += 60 {
		items = append(items, map[string]any{"id": len(items), "name": fmt.Sprintf("item %d", len(items)), "ok": len(items)%2 == 0})
	}
	b, _ := json.Marshal(map[string]any{"items": items})
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestXHRCompatibility compares peer5.Request with the native
// XMLHttpRequest in one page: every responseType, a 404, abort, timeout,
// progress events and JSON.
func TestXHRCompatibility(t *testing.T) {
	b := browser(t)
	data := t.TempDir()
	writeJSON(t, data, "big.json", 400<<10)
	writeJSON(t, data, "small.json", 2<<10)
	base := startSite(t, siteOptions{rateLimit: "4MB/s", fileSize: "2MiB", dataDir: data})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	ctx := tab(t, b, base+"/test/page.html")

	wantEvents := []string{"rs1", "loadstart", "rs2", "loading", "rs4", "load", "loadend"}
	for _, url := range []string{"/data/big.json", "/data/small.json"} {
		for _, rt := range []string{"", "text", "json", "arraybuffer", "blob"} {
			t.Run(fmt.Sprintf("%s/%q", url, rt), func(t *testing.T) {
				native := get(t, ctx, "XMLHttpRequest", url, rt)
				ours := get(t, ctx, "peer5.Request", url, rt)
				if ours.Status != 200 || ours.Ready != 4 || ours.Response != native.Response {
					t.Errorf("peer5.Request: status %d state %d response %+v; native %+v", ours.Status, ours.Ready, ours.Response, native.Response)
				}
				if ours.Type != native.Type {
					t.Errorf("Content-Type %q, native %q", ours.Type, native.Type)
				}
				if !slices.Equal(ours.Events, wantEvents) || !slices.Equal(native.Events, wantEvents) {
					t.Errorf("events %v, native %v, want %v", ours.Events, native.Events, wantEvents)
				}
				// A repeat finds the blocks in the page's own store: nothing
				// comes from HTTP or peers then.
				if got := ours.Stats.FromHTTP + ours.Stats.FromPeers; got != int64(ours.Total) && got != 0 {
					t.Errorf("stats %+v do not add up to %v", ours.Stats, ours.Total)
				}
			})
		}
	}

	t.Run("404", func(t *testing.T) {
		native := get(t, ctx, "XMLHttpRequest", "/files/missing.bin", "")
		ours := get(t, ctx, "peer5.Request", "/files/missing.bin", "")
		if ours.Status != 404 || !slices.Equal(ours.Events, native.Events) || ours.Response != native.Response {
			t.Errorf("peer5.Request %d %v %+v; native %d %v %+v", ours.Status, ours.Events, ours.Response, native.Status, native.Events, native.Response)
		}
	})

	t.Run("progress", func(t *testing.T) {
		ctx := tab(t, b, base+"/test/page.html")
		r := get(t, ctx, "peer5.Request", "/files/demo.bin", "blob")
		if r.Response.SHA != sum || int64(r.Total) != size {
			t.Fatalf("sha %s total %v; want %s %d", r.Response.SHA, r.Total, sum, size)
		}
		if len(r.Progress) < 2 || !slices.IsSorted(r.Progress) || int64(r.Progress[len(r.Progress)-1]) != size {
			t.Errorf("progress %v: want non-decreasing up to %d", r.Progress, size)
		}
	})

	t.Run("abort", func(t *testing.T) {
		// A new tab each: its page holds no block of the file yet.
		ctx := tab(t, b, base+"/test/page.html")
		r := eval[download](t, ctx, 30*time.Second, `trace(peer5.Request, '/files/demo.bin', 'blob', { abortAt: 1 })`)
		want := []string{"rs1", "loadstart", "rs2", "loading", "rs4", "abort", "loadend"}
		if !slices.Equal(r.Events, want) || r.Ready != 0 || r.Status != 0 || r.Response.Kind != "object" {
			t.Errorf("abort: events %v state %d status %d response %+v; want %v, state 0, status 0, null", r.Events, r.Ready, r.Status, r.Response, want)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ctx := tab(t, b, base+"/test/page.html")
		r := eval[download](t, ctx, 30*time.Second, `trace(peer5.Request, '/files/demo.bin', 'blob', { timeout: 150 })`)
		if n := len(r.Events); n < 3 || !slices.Equal(r.Events[n-3:], []string{"rs4", "timeout", "loadend"}) || r.Status != 0 {
			t.Errorf("timeout: events %v status %d", r.Events, r.Status)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		type res struct {
			SHA   string `json:"sha"`
			Peers *int64 `json:"fromHttp"`
			Type  string `json:"type"`
		}
		ctx := tab(t, b, base+"/test/page.html")
		r := eval[res](t, ctx, 30*time.Second, `peer5.fetch('/files/demo.bin').then(async (r) => ({
			sha: await sha256hex(await r.arrayBuffer()), fromHttp: r.stats ? r.stats.bytesFromHttp : null, type: r.headers.get('content-type') }))`)
		if r.SHA != sum || r.Peers == nil || *r.Peers != size {
			t.Errorf("peer5.fetch: sha %s, bytes from HTTP %v; want %s, %d", r.SHA, r.Peers, sum, size)
		}
	})
}
