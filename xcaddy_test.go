package p2pxhr

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// xcaddyMain is the main.go xcaddy generates for
// `xcaddy build --with github.com/p2pxhr/p2pxhr` (its builder template):
// Caddy's standard modules and the plugin's root package, nothing else.
const xcaddyMain = `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/p2pxhr/p2pxhr"
)

func main() {
	caddycmd.Main()
}
`

// buildLikeXcaddy builds the binary xcaddy would, in a fresh module that
// requires this repository's Caddy and the plugin (replaced by this
// working tree), and returns its path. It needs only the module cache (or
// the proxy `go mod download` uses).
func buildLikeXcaddy(t *testing.T, ctx context.Context) string {
	t.Helper()
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	goList := func(format string, mod ...string) string {
		out, err := exec.CommandContext(ctx, "go", append([]string{"list", "-m", "-f", format}, mod...)...).Output()
		if err != nil {
			t.Fatalf("go list -m %v: %v", mod, err)
		}
		return strings.TrimSpace(string(out))
	}
	goVersion := goList("{{.GoVersion}}")
	caddyVersion := goList("{{.Version}}", "github.com/caddyserver/caddy/v2")
	dir := t.TempDir()
	gomod := "module caddy\n\ngo " + goVersion + "\n\nrequire (\n" +
		"\tgithub.com/caddyserver/caddy/v2 " + caddyVersion + "\n" +
		"\tgithub.com/p2pxhr/p2pxhr v0.0.0\n)\n\n" +
		"replace github.com/p2pxhr/p2pxhr => " + repo + "\n"
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"main.go": []byte(xcaddyMain), "go.mod": []byte(gomod), "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "caddy")
	build := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod -buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the xcaddy-style main: %v\n%s", err, out)
	}
	return bin
}

// The plugin as xcaddy builds it: the module root alone brings the handler
// and the get and seed commands, and leaves out the demo-only handler and
// bench; the commands work through that binary.
func TestXcaddyStyleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a whole Caddy binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := buildLikeXcaddy(t, ctx)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	modules, err := run("list-modules")
	if err != nil {
		t.Fatalf("list-modules: %v\n%s", err, modules)
	}
	lines := strings.Fields(modules)
	has := func(id string) bool {
		for _, l := range lines {
			if l == id {
				return true
			}
		}
		return false
	}
	for _, id := range []string{"http.handlers.p2pxhr", "http.handlers.file_server", "http.handlers.reverse_proxy"} {
		if !has(id) {
			t.Errorf("list-modules lacks %s", id)
		}
	}
	if has("http.handlers.p2pxhr_demo_files") {
		t.Error("an xcaddy build registers the demo-only http.handlers.p2pxhr_demo_files")
	}

	help, err := run("help")
	if err != nil {
		t.Fatalf("help: %v\n%s", err, help)
	}
	for _, cmd := range []string{"get ", "seed "} {
		if !strings.Contains(help, "\n  "+cmd) {
			t.Errorf("the xcaddy build lacks the %q command:\n%s", strings.TrimSpace(cmd), help)
		}
	}
	if strings.Contains(help, "\n  bench ") {
		t.Error("the xcaddy build carries bench, which belongs to cmd/p2pxhr only")
	}

	// The Caddyfile directive adapts without an order option.
	cf := filepath.Join(t.TempDir(), "Caddyfile")
	os.WriteFile(cf, []byte("example.com {\n\tencode\n\tp2pxhr\n\tfile_server\n}\n"), 0o644)
	if out, err := run("adapt", "--config", cf); err != nil || !strings.Contains(out, `"handler":"p2pxhr"`) {
		t.Errorf("adapt: %v\n%s", err, out)
	}

	// get through that binary against a real site.
	data := randomData(1 << 20)
	base, _ := site(t, "p2pxhr\nfile_server", map[string][]byte{"big.bin": data})
	dst := filepath.Join(t.TempDir(), "big.bin")
	if out, err := run("get", base+"/big.bin", "-o", dst); err != nil {
		t.Fatalf("get: %v\n%s", err, out)
	}
	checkFile(t, dst, data)
	// seed with a wrong number of --from files is a usage error (exit 2).
	out, err := run("seed", base+"/big.bin", "--from", dst, "--from", dst)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("seed with two --from for one URL: %v, want exit 2\n%s", err, out)
	}
}
