package inject

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzInject: for any page, any chunking (derived from chunkSeed), any hold
// limit and with or without a Flush after each write, injection never
// panics and the output is the input with exactly the tag spliced in.
// Without flushes the result must not depend on the chunking.
func FuzzInject(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*.*html")
	for _, s := range seeds {
		page, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(page, []byte{1}, uint16(0), false)
	}
	f.Fuzz(func(t *testing.T, page, chunkSeed []byte, holdLimit uint16, flushEach bool) {
		opts := testOptions()
		opts.HoldLimit = int(holdLimit)
		in := newTestInjector(t, opts)
		var chunks []int
		for _, b := range chunkSeed {
			chunks = append(chunks, int(b)%97+1)
		}
		rec, rw := serve(t, in, "text/html", page, chunks, flushEach)
		out := rec.Body.Bytes()
		tag := rw.Tag()
		if tag == "" {
			if !bytes.Equal(out, page) {
				t.Fatalf("no tag reported but output differs:\n in %q\nout %q", page, out)
			}
			return
		}
		at := int(rw.scan.at)
		if at < 0 || at > len(page) || !bytes.Equal(out, splice(page, at, tag)) {
			t.Fatalf("output is not the input with the tag at %d:\n in %q\nout %q", at, page, out)
		}
		if !bytes.Contains(page, []byte(tag)) && !bytes.Equal(Strip(out, tag), page) {
			t.Fatalf("Strip did not give the input back")
		}
		if !flushEach {
			whole, _ := serve(t, in, "text/html", page, nil, false)
			if !bytes.Equal(whole.Body.Bytes(), out) {
				t.Fatalf("chunking changed the output:\nchunked %q\n  whole %q", out, whole.Body.Bytes())
			}
		}
	})
}

// TestWriteFuzzSeeds writes the committed seed corpus (with -update): the
// golden pages under a few chunkings, hold limits and flush settings.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz/FuzzInject")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzInject")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds, _ := filepath.Glob("testdata/golden/*.*html")
	for i, s := range seeds {
		page, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		chunk := []byte{byte(i), 3, 1, 50}
		hold := uint16(0)
		if i%3 == 0 {
			hold = 40
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\nuint16(%d)\nbool(%v)\n", page, chunk, hold, i%2 == 0)
		name := filepath.Join(dir, "seed-"+filepath.Base(s))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
