package peer

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

func TestDownloadOverHTTPAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomBytes(10*testBlock + 123)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 0)
	c := newTestClient(t, nil, "", nil)
	var dst MemFile
	res, err := c.Download(ctx, o.url(), &dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("content differs")
	}
	if res.BytesFromHTTP != int64(len(data)) || res.BytesFromPeers != 0 || res.Size != int64(len(data)) {
		t.Fatalf("result %+v", res)
	}
}

func TestOneSeederThreeGetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(32 * testBlock)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 256<<10) // 256 KiB/s: a struggling origin
	hub := NewMemHub()
	seeder := newTestClient(t, hub, "seeder", nil)
	seed(t, ctx, seeder, o.url(), data)

	var wg sync.WaitGroup
	results := make([]Result, 3)
	files := make([]*checkedFile, 3)
	for g := range 3 {
		files[g] = &checkedFile{t: t, want: data}
		c := newTestClient(t, hub, "getter"+string(rune('A'+g)), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Download(ctx, o.url(), files[g])
			if err != nil {
				t.Errorf("getter %d: %v", g, err)
			}
			results[g] = res
		}()
	}
	wg.Wait()
	var http, peers int64
	for g, f := range files {
		if !bytes.Equal(f.Bytes(), data) {
			t.Errorf("getter %d: content differs", g)
		}
		http += results[g].BytesFromHTTP
		peers += results[g].BytesFromPeers
		t.Logf("getter %d: %+v", g, results[g])
	}
	if peers < 3*http {
		t.Errorf("from peers %d, from HTTP %d: want most bytes from peers", peers, http)
	}
	if seeder.Uploaded() == 0 {
		t.Error("seeder uploaded nothing")
	}
}

func TestBadPeerIsDroppedAndReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(16 * testBlock)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 1<<20)
	hub := NewMemHub()
	liar := newTestClient(t, hub, "liar", func(o *Options) {
		o.hooks = &testHooks{corrupt: func(int) bool { return true }}
	})
	seed(t, ctx, liar, o.url(), data)

	victim := newTestClient(t, hub, "victim", nil)
	dst := &checkedFile{t: t, want: data}
	res, err := victim.Download(ctx, o.url(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("content differs")
	}
	if res.BytesFromPeers != 0 {
		t.Errorf("%d bytes counted from a peer that only lies", res.BytesFromPeers)
	}
	reports := hub.Reports()
	if len(reports) != 1 || reports[0].Peer != "liar" || reports[0].From != "victim" || reports[0].Reason != reasonBadBlock {
		t.Fatalf("reports %+v, want one bad-block report of liar", reports)
	}
}

func TestPeerClaimingBlocksItLacks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(8 * testBlock)
	// A slow origin, so the liar's hello arrives while most blocks are
	// still missing and its silence must be timed out.
	o := newOrigin(t, newVersion(t, data, `"v1"`), 256<<10)
	hub := NewMemHub()
	liar := newTestClient(t, hub, "liar", func(o *Options) { o.hooks = &testHooks{claimAll: true} })
	seed(t, ctx, liar, o.url(), data[:3*testBlock]) // holds 3 blocks, claims 8

	victim := newTestClient(t, hub, "victim", func(o *Options) {
		o.Scheduler.RequestTimeout = 300 * time.Millisecond
	})
	dst := &checkedFile{t: t, want: data}
	res, err := victim.Download(ctx, o.url(), dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), data) {
		t.Fatal("content differs")
	}
	t.Logf("%+v", res)
}

func TestSeederLeavesMidTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomBytes(32 * testBlock)
	o := newOrigin(t, newVersion(t, data, `"v1"`), 512<<10)
	hub := NewMemHub()
	seeder := newTestClient(t, hub, "seeder", nil)
	stopSeeder := seed(t, ctx, seeder, o.url(), data)

	// The seeder upload is slowed by per-request latency so that the
	// getters are mid-transfer when it leaves: it leaves after 8 blocks.
	var once sync.Once
	leave := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		dst := &checkedFile{t: t, want: data}
		c := newTestClient(t, hub, "getter"+string(rune('A'+g)), func(o *Options) {
			o.Progress = func(p Progress) {
				if p.FromPeers >= 8*testBlock {
					once.Do(func() { close(leave) })
				}
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Download(ctx, o.url(), dst); err != nil {
				t.Errorf("getter %d: %v", g, err)
			}
			if !bytes.Equal(dst.Bytes(), data) {
				t.Errorf("getter %d: content differs", g)
			}
		}()
	}
	select {
	case <-leave:
	case <-ctx.Done():
		t.Fatal("no progress from the seeder")
	}
	stopSeeder()
	seeder.Close()
	wg.Wait()
}

func TestOriginChangesMidDownload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := randomBytes(12 * testBlock)
	neu := randomBytes(9*testBlock + 77) // shorter: no old byte may remain
	o := newOrigin(t, newVersion(t, old, `"v1"`), 4<<20)
	next := newVersion(t, neu, `"v2"`)
	o.onRange = func(n int64) {
		if n == 3 {
			o.cur.Store(next)
		}
	}
	c := newTestClient(t, nil, "", nil)
	var dst MemFile
	res, err := c.Download(ctx, o.url(), &dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.Bytes(), neu) {
		t.Fatal("result is not the new version, whole")
	}
	if res.Restarts == 0 {
		t.Fatalf("no restart: %+v", res)
	}
}
