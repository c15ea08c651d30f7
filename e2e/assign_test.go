package e2e

import (
	"sync"
	"testing"
	"time"
)

// Three tabs opening a file together at a server that assigns HTTP fetches:
// the file leaves the origin once (at most one block twice), the rest
// travels between the tabs. Before the assignments each tab fetched the
// first block itself, and blocks none of its neighbours had yet.
func TestTabsTogetherFetchEachBlockOnce(t *testing.T) {
	b := browser(t)
	base := startSite(t, siteOptions{rateLimit: "4MB/s", fileSize: "4MiB"})
	size, sum := fileSHA256(t, base+"/files/demo.bin")
	type originStats struct {
		Origin struct {
			Bytes int64 `json:"bytes"`
		} `json:"origin"`
	}
	before := readStats[originStats](t, base, "").Origin.Bytes // the reference copy above
	tabs := make([]tabCtx, 3)
	for i := range tabs {
		tabs[i] = tab(t, b, base+"/test/page.html")
	}
	got := make([]download, len(tabs))
	var wg sync.WaitGroup
	for i, ctx := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = eval[download](t, ctx, 90*time.Second, `trace(peer5.Request, "/files/demo.bin", "arraybuffer")`)
		}()
	}
	wg.Wait()
	for i, d := range got {
		if d.Status != 200 || d.Response.Size != size || d.Response.SHA != sum {
			t.Fatalf("tab %d: status %d, %d bytes, sha %s", i, d.Status, d.Response.Size, d.Response.SHA)
		}
	}
	sent := readStats[originStats](t, base, "").Origin.Bytes - before
	const block = 256 << 10
	t.Logf("origin sent %d bytes for %d-byte downloads by %d tabs", sent, size, len(tabs))
	if sent > size+block {
		t.Fatalf("the origin sent %d bytes, more than the file (%d) and one block more", sent, size)
	}
}
