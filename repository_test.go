package p2pxhr

import (
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Caddyfile snippets in the docs are what `caddy fmt` would write, so a
// pasted one does not make Caddy warn on every load.
func TestDocCaddyfilesAreFormatted(t *testing.T) {
	docs, _ := filepath.Glob("*.md")
	more, _ := filepath.Glob("*/*.md")
	block := regexp.MustCompile("(?s)```caddyfile\n(.*?)```")
	n := 0
	for _, doc := range append(docs, more...) {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatch(raw, -1) {
			n++
			if got := caddyfile.Format(m[1]); string(got) != string(m[1]) {
				t.Errorf("%s: a Caddyfile snippet is not caddy fmt clean; caddy fmt gives:\n%s", doc, got)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Caddyfile snippets found in the docs")
	}
}

// go.mod asks for the Go version the code needs, which is the highest any
// dependency needs (Caddy's among them), not the toolchain that happened
// to run go mod tidy.
func TestGoModAsksForWhatTheCodeNeeds(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Main}} {{.GoVersion}}", "all").Output()
	if err != nil {
		t.Fatal(err)
	}
	var ours, needed string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		main, v, _ := strings.Cut(line, " ")
		if main == "true" {
			ours = v
		} else if v != "" && (needed == "" || version.Compare("go"+v, "go"+needed) > 0) {
			needed = v
		}
	}
	if ours != needed {
		t.Errorf("go.mod says go %s; the dependencies need at most go %s", ours, needed)
	}
}
