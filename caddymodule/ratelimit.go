package caddymodule

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// loadedWindow is how long after a writer last had to wait for the rate
// limit the server still counts as loaded.
const loadedWindow = 2 * time.Second

// byteLimiter caps the bytes per second of shareable responses, all
// visitors together, and remembers when it last held someone back: that
// is the "server is loaded" signal the coordinator passes to clients.
type byteLimiter struct {
	lim        *rate.Limiter // nil when unlimited
	chunk      int
	lastWaited atomic.Int64 // unix nanoseconds
}

func newByteLimiter(bytesPerSecond int64) *byteLimiter {
	if bytesPerSecond <= 0 {
		return &byteLimiter{}
	}
	// Bursts of about 1/8 s keep the pace smooth without tiny writes.
	chunk := int(min(max(bytesPerSecond/8, 4<<10), 256<<10))
	return &byteLimiter{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), chunk), chunk: chunk}
}

// enabled reports whether a limit is configured.
func (l *byteLimiter) enabled() bool { return l.lim != nil }

// write sends p through send in chunks no faster than the limit.
func (l *byteLimiter) write(ctx context.Context, p []byte, send func([]byte) (int, error)) (int, error) {
	if l.lim == nil {
		return send(p)
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), l.chunk)
		if r := l.lim.ReserveN(time.Now(), n); r.OK() {
			if d := r.Delay(); d > 0 {
				l.lastWaited.Store(time.Now().UnixNano())
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					r.Cancel()
					return written, ctx.Err()
				}
			}
		}
		m, err := send(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Loaded reports whether the limit held a response back recently.
func (l *byteLimiter) Loaded() bool {
	last := l.lastWaited.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < loadedWindow
}
