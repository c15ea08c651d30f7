package p2pxhr

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/cli"
)

// plainInterval is how often a progress line is printed when the output
// is not a terminal (tests shorten it to watch transfers closely).
var plainInterval = time.Second

// status is what a progress line shows.
type status struct {
	Loaded, Total       int64
	FromHTTP, FromPeers int64
	Uploaded            int64
	Seeding             bool
}

// progressLine prints a transfer's progress: one line redrawn in place on
// a terminal (at most 5 times a second), a plain line about every second
// otherwise, so logs of a non-interactive run stay readable. Log lines go
// through it so they never land in the middle of the redrawn line.
type progressLine struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu     sync.Mutex
	cur    status
	prev   status // at the last print, for the rate
	prevAt time.Time
	drawn  bool // a redrawn line is on screen

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newProgressLine(w io.Writer) *progressLine {
	p := &progressLine{w: w, tty: cli.IsTerminal(w), start: time.Now(), prevAt: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	every := plainInterval
	if p.tty {
		every = 200 * time.Millisecond
	}
	go p.loop(every)
	return p
}

// update records the latest state; printing happens on the ticker.
func (p *progressLine) update(f func(*status)) {
	p.mu.Lock()
	f(&p.cur)
	p.mu.Unlock()
}

// logf prints a message line, clearing a redrawn progress line first.
func (p *progressLine) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progressLine) loop(every time.Duration) {
	defer close(p.done)
	cli.TickUntil(p.stop, every, p.print)
}

// finish stops the ticker and leaves the terminal on a fresh line; it may
// be called more than once.
func (p *progressLine) finish() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
	p.mu.Lock()
	p.clearLocked()
	p.mu.Unlock()
}

func (p *progressLine) clearLocked() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *progressLine) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	cur := p.cur
	secs := now.Sub(p.prevAt).Seconds()
	moved := cur.Loaded - p.prev.Loaded
	if cur.Seeding {
		moved = cur.Uploaded - p.prev.Uploaded
	}
	rate := int64(float64(moved) / max(secs, 0.001))
	p.prev, p.prevAt = cur, now
	var line string
	if cur.Seeding {
		line = fmt.Sprintf("seeding: %s uploaded, %s/s", cli.FormatBytes(cur.Uploaded), cli.FormatBytes(rate))
	} else {
		pc := percent(cur.Loaded, cur.Total)
		line = fmt.Sprintf("%3d%% %s of %s, %d%% from peers, %s/s", pc, cli.FormatBytes(cur.Loaded),
			cli.FormatBytes(cur.Total), percent(cur.FromPeers, cur.FromHTTP+cur.FromPeers), cli.FormatBytes(rate))
		if p.tty {
			const width = 24
			n := int(pc * width / 100)
			line = "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "] " + line
		}
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K"+line)
		p.drawn = true
		return
	}
	fmt.Fprintln(p.w, line)
}
