package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rangeLog records every range the P2P peers ask the origin for, so a low
// offload can be explained from evidence: how many times each block went
// over HTTP (copies > 1 are the origin serving the same bytes to several
// peers, the thing P2P is meant to avoid).
//
// It also keeps the longest pause between two requests: a lone peer whose
// HTTP workers idle while the origin has bandwidth to spare shows as a
// gap of seconds where a busy download has tens of milliseconds.
type rangeLog struct {
	mu      sync.Mutex
	starts  map[int64]int // range start → requests
	total   int
	begin   time.Time
	last    time.Time
	gap     time.Duration // longest pause between consecutive requests
	gapFrom time.Duration // when it began, from begin
}

func newRangeLog() *rangeLog {
	return &rangeLog{starts: map[int64]int{}, begin: time.Now()}
}

// wrap returns a transport that logs GET ranges on the resource path and
// otherwise behaves as next.
func (l *rangeLog) wrap(next http.RoundTripper, path string) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if rg := r.Header.Get("Range"); r.Method == http.MethodGet && r.URL.Path == path && rg != "" {
			spec, _ := strings.CutPrefix(rg, "bytes=")
			first, _, _ := strings.Cut(spec, "-")
			if start, err := strconv.ParseInt(first, 10, 64); err == nil {
				l.mu.Lock()
				l.starts[start]++
				l.total++
				now := time.Now()
				if !l.last.IsZero() && now.Sub(l.last) > l.gap {
					l.gap, l.gapFrom = now.Sub(l.last), l.last.Sub(l.begin)
				}
				l.last = now
				l.mu.Unlock()
			}
		}
		return next.RoundTrip(r)
	})
}

// copies returns how many blocks were requested k times, for each k, and
// the number of requests.
func (l *rangeLog) copies() (hist map[string]int, requests int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	hist = map[string]int{}
	for _, k := range l.starts {
		hist[strconv.Itoa(k)]++
	}
	return hist, l.total
}

// rangesFromAccessLog reads the site's access log for range requests of
// path made since begin: the server's view of what the peers asked for.
func (s *benchSite) rangesFromAccessLog(path string, begin time.Time) (*rangeLog, error) {
	b, err := os.ReadFile(s.accessLog)
	if err != nil {
		return nil, err
	}
	type entry struct {
		TS      float64 `json:"ts"`
		Request struct {
			Method  string              `json:"method"`
			URI     string              `json:"uri"`
			Headers map[string][]string `json:"headers"`
		} `json:"request"`
	}
	l := newRangeLog()
	l.begin = begin
	var times []time.Time
	var starts []int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e entry
		if len(line) == 0 || json.Unmarshal(line, &e) != nil || e.Request.Method != http.MethodGet {
			continue
		}
		rg := e.Request.Headers["Range"]
		if u, _, _ := strings.Cut(e.Request.URI, "?"); u != path || len(rg) == 0 {
			continue
		}
		spec, _ := strings.CutPrefix(rg[0], "bytes=")
		first, _, _ := strings.Cut(spec, "-")
		start, err := strconv.ParseInt(first, 10, 64)
		if err != nil {
			continue
		}
		// ts is when the request ended; order and gaps are approximate.
		times = append(times, time.Unix(0, int64(e.TS*1e9)))
		starts = append(starts, start)
	}
	for i, start := range starts {
		l.starts[start]++
		l.total++
		if i > 0 && times[i].Sub(times[i-1]) > l.gap {
			l.gap, l.gapFrom = times[i].Sub(times[i-1]), times[i-1].Sub(begin)
		}
	}
	return l, nil
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// longestGap returns the longest pause between two range requests and
// when it began, from the start of the phase.
func (l *rangeLog) longestGap() (gap, from time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gap, l.gapFrom
}
