package inject

import (
	"math/rand"
	"net/http"
	"net/http/httptest"
	"testing"
)

const testSrc = "/_p2pxhr/client.js"

// testOptions are the options the golden files were written with.
func testOptions() Options {
	return Options{
		Src:   testSrc,
		Attrs: []Attr{{"data-prefix", "/_p2pxhr/"}, {"async", ""}},
	}
}

func newTestInjector(t testing.TB, opts Options) *Injector {
	t.Helper()
	in, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// serve runs body through a wrapped recorder in the given chunk sizes
// (cycled; nil means one write) and returns the recorder and the wrapper.
func serve(t testing.TB, in *Injector, contentType string, body []byte, chunks []int, flushEach bool) (*httptest.ResponseRecorder, *ResponseWriter) {
	t.Helper()
	rec := httptest.NewRecorder()
	rw := in.Wrap(rec, httptest.NewRequest(http.MethodGet, "/page", nil))
	rw.Header().Set("Content-Type", contentType)
	writeChunks(t, rw, body, chunks, flushEach)
	if err := rw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return rec, rw
}

func writeChunks(t testing.TB, rw *ResponseWriter, body []byte, chunks []int, flushEach bool) {
	t.Helper()
	for i := 0; len(body) > 0; i++ {
		n := len(body)
		if len(chunks) > 0 {
			n = min(max(chunks[i%len(chunks)], 1), len(body))
		}
		if _, err := rw.Write(body[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		body = body[n:]
		if flushEach {
			rw.Flush()
		}
	}
}

// chunkings are the ways every golden is written: whole, a byte at a
// time, and a few random splits.
func chunkings(size int) map[string][]int {
	c := map[string][]int{"whole": nil, "bytes": {1}, "sevens": {7}}
	rng := rand.New(rand.NewSource(int64(size)))
	for i := range 3 {
		var sizes []int
		for range 50 {
			sizes = append(sizes, 1+rng.Intn(max(size/4, 2)))
		}
		c["random"+string(rune('A'+i))] = sizes
	}
	return c
}

// splice is what injection should produce: tag inserted at offset at.
func splice(page []byte, at int, tag string) []byte {
	out := append([]byte{}, page[:at]...)
	out = append(out, tag...)
	return append(out, page[at:]...)
}
