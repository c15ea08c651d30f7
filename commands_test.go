package p2pxhr

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/p2pxhr/p2pxhr/internal/cli"
)

func TestCommandsAreRegistered(t *testing.T) {
	for _, name := range []string{"get", "seed"} {
		if _, ok := caddycmd.Commands()[name]; !ok {
			t.Errorf("command %q is not registered", name)
		}
	}
}

func TestGetWritesFileAndSummary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomData(1<<20 + 7)
	base, _ := site(t, "p2pxhr\nfile_server", map[string][]byte{"big.bin": data})
	dir := t.TempDir()
	t.Chdir(dir) // the default output is the URL's base name here
	r := getCmd(t, ctx, base+"/big.bin")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
	}
	checkFile(t, filepath.Join(dir, "big.bin"), data)
	noPartFiles(t, dir)
	for _, want := range []string{"saved big.bin (1.0 MiB) in ", "from HTTP:  1.0 MiB (100%)", "from peers: 0 B (0%), 0 peers used"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "big.bin")); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestGetNotShareableFallsBackToHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	small := []byte("too small to share\n") // under the default min_size
	base, _ := site(t, "p2pxhr\nfile_server", map[string][]byte{"small.txt": small})
	out := filepath.Join(t.TempDir(), "small.txt")
	r := getCmd(t, ctx, base+"/small.txt", "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
	}
	checkFile(t, out, small)
	if !strings.Contains(r.stderr.String(), "is not shareable (") || !strings.Contains(r.stderr.String(), "plain HTTP") {
		t.Errorf("no notice of the fallback: %q", r.stderr)
	}
}

func TestGetExitCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	base, _ := site(t, "p2pxhr\nfile_server", map[string][]byte{"big.bin": randomData(512 << 10)})
	dir := t.TempDir()

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad scheme", []string{"ftp://example.com/f"}, cli.ExitUsage, "bad URL"},
		{"not a URL", []string{"big.bin"}, cli.ExitUsage, "bad URL"},
		{"no file name", []string{base + "/"}, cli.ExitUsage, "use -o"},
		{"two URLs", []string{base + "/a", base + "/b"}, cli.ExitUsage, "usage"},
		{"bad ICE server", []string{base + "/big.bin", "-o", filepath.Join(dir, "x"), "--ice-server", "http://x"}, cli.ExitUsage, "--ice-server"},
		{"unreachable", []string{closed + "/big.bin", "-o", filepath.Join(dir, "u")}, cli.ExitFailure, "unreachable"},
		{"not found", []string{base + "/missing.bin", "-o", filepath.Join(dir, "m")}, cli.ExitFailure, "404"},
		{"unwritable", []string{base + "/big.bin", "-o", filepath.Join(dir, "no", "such", "dir", "f")}, cli.ExitFailure, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := getCmd(t, ctx, tc.args...)
			if r.code != tc.code || r.err == nil || !strings.Contains(r.err.Error(), tc.msg) {
				t.Errorf("exit %d, error %v; want exit %d mentioning %q", r.code, r.err, tc.code, tc.msg)
			}
		})
	}
	noPartFiles(t, dir)
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
		t.Errorf("failed downloads left files: %v", m)
	}
}

func TestSeedFromWrongFileNamesTheBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomData(1 << 20)
	base, _ := site(t, "p2pxhr {\n block_size 64KiB\n}\nfile_server", map[string][]byte{"big.bin": data})
	wrong := append([]byte(nil), data...)
	wrong[2*64<<10+5] ^= 1 // one bit of block 2
	path := filepath.Join(t.TempDir(), "copy.bin")
	if err := os.WriteFile(path, wrong, 0o644); err != nil {
		t.Fatal(err)
	}
	_, ended, stop := seedCmdDone(t, ctx, base+"/big.bin", "--from", path)
	select {
	case <-ended: // it must fail by itself, before seeding anything
	case <-ctx.Done():
		t.Fatal("seed of a wrong file is still running")
	}
	r := stop()
	if r.code != cli.ExitFailure || r.err == nil || !strings.Contains(r.err.Error(), "block 2 ") {
		t.Fatalf("seed of a wrong file: exit %d, %v; want exit 1 naming block 2", r.code, r.err)
	}

	_, stop = seedCmd(t, ctx, base+"/big.bin", base+"/other.bin", "--from", path)
	if r := stop(); r.code != cli.ExitUsage {
		t.Errorf("one --from for two URLs: exit %d, %v", r.code, r.err)
	}
}
