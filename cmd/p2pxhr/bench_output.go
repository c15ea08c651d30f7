package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

// benchProgress shows the phase running on stderr: redrawn on a terminal,
// a line every plainInterval×2 otherwise (long runs stay readable in logs).
type benchProgress struct {
	w   io.Writer
	tty bool

	mu      sync.Mutex
	phase   string
	n       int
	total   int64
	started time.Time
	drawn   bool

	loaded         atomic.Int64
	done, churned  atomic.Int64
	stop, finished chan struct{}
	once           sync.Once
}

func newBenchProgress(w io.Writer) *benchProgress {
	p := &benchProgress{w: w, tty: isTerminal(w), stop: make(chan struct{}), finished: make(chan struct{})}
	every := 2 * plainInterval
	if p.tty {
		every = 250 * time.Millisecond
	}
	go p.loop(every)
	return p
}

func (p *benchProgress) startPhase(name string, n int, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.n, p.total, p.started = name, n, total, time.Now()
	p.loaded.Store(0)
	p.done.Store(0)
	p.churned.Store(0)
}

func (p *benchProgress) addLoaded(n int64) { p.loaded.Add(n) }

func (p *benchProgress) peerDone(churned bool) {
	if churned {
		p.churned.Add(1)
	}
	p.done.Add(1)
}

func (p *benchProgress) loop(every time.Duration) {
	defer close(p.finished)
	tickUntil(p.stop, every, p.print)
}

func (p *benchProgress) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return
	}
	line := fmt.Sprintf("N=%d %s: %d/%d done", p.n, p.phase, p.done.Load(), p.n)
	if c := p.churned.Load(); c > 0 {
		line += fmt.Sprintf(" (%d left mid-way)", c)
	}
	line += fmt.Sprintf(", %s of %s, %.1fs", formatBytes(p.loaded.Load()), formatBytes(p.total), time.Since(p.started).Seconds())
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K"+line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}

// pause clears the redrawn line before a result row is printed and stays
// quiet until the next phase starts.
func (p *benchProgress) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = ""
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// finish stops the display for good; it may be called more than once.
func (p *benchProgress) finish() {
	p.once.Do(func() { close(p.stop) })
	<-p.finished
	p.pause()
}

func printBenchHeader(w io.Writer, cfg benchConfig) {
	arr := "all at once"
	if cfg.arrivals > 0 {
		arr = "evenly over " + cfg.arrivals.String()
		if cfg.poisson {
			arr = "Poisson over " + cfg.arrivals.String()
		}
	}
	if cfg.busy > 0 {
		arr += fmt.Sprintf(", %d core(s) kept busy", cfg.busy)
	}
	policy := cfg.offload
	if policy == "" {
		policy = "default (the rate limit's pressure)"
	}
	fmt.Fprintf(w, "file %s, blocks %s, origin capped at %s/s, offload policy %s, arrivals %s, seed after: %v, churn %.0f%%\n\n",
		humanize.IBytes(uint64(cfg.size)), humanize.IBytes(uint64(cfg.blockSize)), humanize.Bytes(uint64(cfg.originRate)),
		policy, arr, cfg.seedAfter, cfg.churn*100)
	fmt.Fprintf(w, "%5s %8s %7s %12s %10s %10s %10s %10s %8s %8s %s\n",
		"peers", "offload", "limit", "origin", "p2p mean", "p2p p95", "http mean", "http p95", "p2p/http", "speedup", "verified")
}

func printBenchRow(w io.Writer, r benchResult) {
	ratio := 0.0
	if r.HTTPMeanSeconds > 0 {
		ratio = r.P2PMeanSeconds / r.HTTPMeanSeconds
	}
	fmt.Fprintf(w, "%5d %8.3f %7.3f %12s %9.2fs %9.2fs %9.2fs %9.2fs %8.3f %7.2fx %v\n",
		r.Peers, r.Offload, r.Limit, formatBytes(r.OriginBytes), r.P2PMeanSeconds, r.P2PP95Seconds,
		r.HTTPMeanSeconds, r.HTTPP95Seconds, ratio, r.Speedup, r.Verified)
	if r.Churned > 0 {
		fmt.Fprintf(w, "      (%d of %d peers left mid-way; times are of the %d that finished)\n", r.Churned, r.Peers, r.Peers-r.Churned)
	}
	fmt.Fprintf(w, "      swarm floor %.2fs (origin %.2fs, one peer from the swarm %.2fs): p2p mean / floor %.2f; load average %.2f → %.2f\n",
		r.FloorSeconds, float64(r.Size)/float64(r.OriginRate), r.ProbeSeconds, r.FloorRatio, r.LoadAverage[0], r.LoadAverage[1])
	if r.Failure != "" {
		fmt.Fprintf(w, "      FAILED: %s\n", r.Failure)
	}
}

func printBenchNotes(w io.Writer) {
	fmt.Fprintln(w, "\noffload = 1 - origin bytes (counted at the module) / bytes delivered to peers; limit = (N-1)/N")
	fmt.Fprintln(w, "p2p/http = mean completion with P2P / mean completion over plain HTTP under the same cap")
}

func printBenchJSON(w io.Writer, r benchResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
