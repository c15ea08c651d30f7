package inject

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden outputs (and the fuzz seed corpus) from the current code")

// TestGolden runs every testdata/golden/*.html|*.xhtml page through the
// injector under several chunkings; all must give the .golden output.
func TestGolden(t *testing.T) {
	in := newTestInjector(t, testOptions())
	inputs, _ := filepath.Glob("testdata/golden/*.*html")
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, input := range inputs {
		t.Run(filepath.Base(input), func(t *testing.T) {
			page, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			ct := "text/html; charset=utf-8"
			if strings.HasSuffix(input, ".xhtml") {
				ct = "application/xhtml+xml"
			}
			rec, _ := serve(t, in, ct, page, nil, false)
			golden := input + ".golden"
			if *update {
				if err := os.WriteFile(golden, rec.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			for name, chunks := range chunkings(len(page)) {
				rec, _ := serve(t, in, ct, page, chunks, false)
				if !bytes.Equal(rec.Body.Bytes(), want) {
					t.Errorf("chunking %s:\n got %q\nwant %q", name, rec.Body.Bytes(), want)
				}
			}
		})
	}
}

// TestHugePages: pages far bigger than the hold limit, generated here.
func TestHugePages(t *testing.T) {
	in := newTestInjector(t, testOptions())
	tag := in.Tag(nil, "")
	bigBody := strings.Repeat("<p>filler paragraph with some text</p>\n", 150_000)             // ~6 MB
	bigStyle := "<style>" + strings.Repeat("/* </head> */ .c{color:red}\n", 5000) + "</style>" // ~140 KB

	cases := []struct {
		name, head, rest string
		at               string // the tag goes right before the first occurrence of this in the page
		after            string // ... or right after this
	}{
		{name: "big body, small head", head: "<html><head><title>t</title>", rest: "</head><body>" + bigBody, at: "</head>"},
		{name: "head over the hold limit", head: "<html><head><meta charset=utf-8>", rest: bigStyle + "</head><body>" + bigBody, after: "<meta charset=utf-8>"},
		{name: "no head, huge text", head: "", rest: strings.Repeat("plain text ", 20_000) + "<p>", at: ""},
	}
	for _, c := range cases {
		page := []byte(c.head + c.rest)
		at := len(c.head)
		switch {
		case c.at != "":
			at = strings.Index(string(page), c.at)
		case c.after != "":
			at = strings.Index(string(page), c.after) + len(c.after)
		}
		want := splice(page, at, tag)
		for _, chunks := range [][]int{nil, {4096}, {1000, 7, 30000}} {
			t.Run(fmt.Sprintf("%s/%v", c.name, chunks), func(t *testing.T) {
				rec, _ := serve(t, in, "text/html", page, chunks, false)
				if !bytes.Equal(rec.Body.Bytes(), want) {
					got := rec.Body.String()
					t.Fatalf("tag at %d, want %d", strings.Index(got, tag), at)
				}
			})
		}
	}
}
