package peer

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

// Visitors arriving together at a coordinator that assigns HTTP fetches:
// each block leaves the origin exactly once, however many want it. Before
// the assignments every visitor fetched the first block itself (8 copies
// of block 0 here) and then random blocks nobody it knew had.
func TestSwarmFetchesEachBlockOnceFromOrigin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const peers, blocks = 8, 24
	data := randomBytes(blocks * testBlock)
	o := newCoordOriginWith(t, newVersion(t, data, `"v1"`), 1<<20, coordinator.Config{})
	var mu sync.Mutex
	copies := map[int]int{}
	o.onRangeReq = func(r *http.Request) {
		spec := strings.TrimPrefix(r.Header.Get("Range"), "bytes=")
		first, _, _ := strings.Cut(spec, "-")
		if start, err := strconv.Atoi(first); err == nil {
			mu.Lock()
			copies[start/testBlock]++
			mu.Unlock()
		}
	}
	// Long deadlines: no duplicate may come from a slow machine's timings.
	slow := func(opts *Options) {
		opts.Scheduler.RequestTimeout = time.Minute
		opts.Scheduler.StarveGrace = time.Minute
	}
	var done, seeding sync.WaitGroup
	seedCtx, stopSeeding := context.WithCancel(ctx)
	defer func() { stopSeeding(); seeding.Wait() }()
	errs := make(chan error, peers)
	for i := range peers {
		c, _ := newCoordPeerFrom(t, ctx, o, 10+i, slow)
		done.Add(1)
		seeding.Add(1)
		go func() {
			defer seeding.Done()
			var got MemFile
			_, err := c.Download(ctx, o.url(), &got)
			if err == nil && !bytes.Equal(got.data, data) {
				err = errors.New("downloaded bytes differ from the origin's")
			}
			errs <- err
			done.Done()
			if err == nil {
				// Stay, as visitors do while the page is open, so no block
				// is lost to the swarm before everyone has it.
				_ = c.Seed(seedCtx, o.url(), bytes.NewReader(data))
			}
		}()
	}
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for b := range blocks {
		if copies[b] != 1 {
			t.Errorf("block %d left the origin %d times, want once (all: %v)", b, copies[b], copies)
		}
	}
}
