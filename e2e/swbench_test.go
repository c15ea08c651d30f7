package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// noWorker makes the page's serviceWorker.register never settle.
const noWorker = `ServiceWorkerContainer.prototype.register = () => new Promise(() => {});`

// TestTimeToFirstFrame measures how long a <video> takes to show its first
// frame with service worker mode against plain HTTP (issue 17's goal:
// at most 1.2 times as long). A benchmark, not a check: it runs only with
// P2PXHR_BENCH_TTFF=<rounds>, and P2PXHR_BENCH_ORIGIN_DELAY=<ms> puts the
// origin that far away (each answer waits so long). Each round and way
// is a new browser (its own profile) opening, as its second page of the
// site, /sw/play.html: an autoplaying 640×360 H.264 video of 15 MB:
//
//   - http: a visitor whose browser registers no worker (the module
//     passes the video through: plain HTTP);
//   - worker: a visitor whose worker controls the page, nobody else on
//     the site (blocks by the worker's and the page's range requests);
//   - worker+peer: the same with another visitor holding the video on a
//     page of the site (blocks from that peer).
//
// Run:
//
//	P2PXHR_BENCH_TTFF=10 go test -run TestTimeToFirstFrame -v -timeout 30m ./e2e
func TestTimeToFirstFrame(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("P2PXHR_BENCH_TTFF"))
	if rounds <= 0 {
		t.Skip("a benchmark: set P2PXHR_BENCH_TTFF=<rounds>")
	}
	base, origin := startSWSite(t, "service_worker on")
	if ms, _ := strconv.Atoi(os.Getenv("P2PXHR_BENCH_ORIGIN_DELAY")); ms > 0 {
		origin.delay = time.Duration(ms) * time.Millisecond
	}
	movie := origin.files["/media/movie.mp4"]
	firstFrame := func(ctx tabCtx) float64 {
		return poll[float64](t, ctx, 60*time.Second, "window.firstFrame")
	}
	times := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		// Plain HTTP: a visitor whose client may register no worker, on
		// its second page (the client's script cached, as for the others).
		ctx := visitorTab(t, browser(t), base+"/sw/landing.html?http", noWorker)
		poll[bool](t, ctx, 10*time.Second, "document.readyState === 'complete' && !!window.peer5")
		navigate(t, ctx, base+"/sw/play.html?http")
		times["http"] = append(times["http"], firstFrame(ctx))

		ctx = controlled(t, browser(t), base, "/sw/landing.html?worker")
		navigate(t, ctx, base+"/sw/play.html?worker")
		times["worker"] = append(times["worker"], firstFrame(ctx))

		// A seeder: a visitor that has fetched the video, still on the site.
		seeder := controlled(t, browser(t), base, "/sw/landing.html?seeder")
		if got := fetchSHA(t, seeder, "/media/movie.mp4", "{}"); got.SHA != shaHex(movie) {
			t.Fatalf("the seeder's copy: %+v", got)
		}
		ctx = controlled(t, browser(t), base, "/sw/landing.html?peer")
		navigate(t, ctx, base+"/sw/play.html?peer")
		times["worker+peer"] = append(times["worker+peer"], firstFrame(ctx))
		s := poll[swStats](t, ctx, 10*time.Second, "(s => s.requests > 0 && s)(peer5.stats().serviceWorker)")
		t.Logf("round %d: http %.0f ms, worker %.0f ms, worker+peer %.0f ms (its blocks: %+v)", r+1,
			times["http"][r], times["worker"][r], times["worker+peer"][r], s)
	}
	median := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	// Each round's ways run one after the other, so a round's ratio
	// suffers less from the machine's load changing than the medians do.
	h := median(times["http"])
	for _, way := range []string{"http", "worker", "worker+peer"} {
		m := median(times[way])
		ratios := make([]float64, rounds)
		for r := range ratios {
			ratios[r] = times[way][r] / times["http"][r]
		}
		fmt.Printf("%-12s median %6.0f ms  (%.2f× http)  min %.0f  max %.0f  median of the rounds' ratios %.2f  n=%d\n",
			way, m, m/h, slices.Min(times[way]), slices.Max(times[way]), median(ratios), len(times[way]))
	}
}
