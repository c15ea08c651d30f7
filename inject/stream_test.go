package inject

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStreaming: an origin writes the start of a page, flushes and stalls.
// The browser must get that start, with the tag, before the stall ends, and
// then the rest.
func TestStreaming(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	const first = "<!doctype html><html><head>"
	const rest = "<title>slow</title></head><body>done</body></html>"
	release := make(chan struct{})
	origin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(2 * time.Second): // bounded: the test fails rather than hangs
		}
		io.WriteString(w, rest)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := in.Wrap(w, r)
		origin.ServeHTTP(rw, r)
		if err := rw.Close(); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()

	start := time.Now()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tag := in.Tag(nil, "")
	wantFirst := first + tag
	br := bufio.NewReader(resp.Body)
	got := make([]byte, len(wantFirst))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Fatalf("first bytes took %v: the stall was not streamed past", elapsed)
	}
	if string(got) != wantFirst {
		t.Fatalf("first part %q, want %q", got, wantFirst)
	}
	close(release)
	tail, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(tail) != rest {
		t.Fatalf("rest %q, want %q", tail, rest)
	}
	if strings.Count(string(got)+string(tail), "client.js") != 1 {
		t.Fatal("tag not exactly once")
	}
}

// TestNoFlushNoEarlyDecision: without a Flush the tag waits for </head>
// even when the head arrives in many writes.
func TestNoFlushNoEarlyDecision(t *testing.T) {
	in := newTestInjector(t, Options{Src: testSrc})
	rec := httptest.NewRecorder()
	rw := in.Wrap(rec, httptest.NewRequest("GET", "/", nil))
	rw.Header().Set("Content-Type", "text/html")
	rw.Write([]byte("<html><he"))
	rw.Write([]byte("ad><title>x</title>"))
	if rec.Body.Len() != 0 {
		t.Fatalf("bytes sent before the insertion point was decided: %q", rec.Body)
	}
	rw.Write([]byte("</head><body>"))
	if !strings.Contains(rec.Body.String(), in.Tag(nil, "")+"</head>") {
		t.Fatalf("got %q", rec.Body)
	}
	rw.Write([]byte("after"))
	if !strings.HasSuffix(rec.Body.String(), "<body>after") {
		t.Fatalf("bytes after the decision were held: %q", rec.Body)
	}
	rw.Close()
}
