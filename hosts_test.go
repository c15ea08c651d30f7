package p2pxhr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/testcaddy"
)

// One handler serves 127.0.0.1 and localhost from a directory per host;
// the two files differ but have one size and date, so file_server gives
// them one ETag. A seeder of localhost's file must not make a download
// from 127.0.0.1 verify against localhost's manifest.
func TestGetNeverMixesTwoHostsOfOneHandler(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	root := t.TempDir()
	files := map[string][]byte{"127.0.0.1": randomData(1 << 20), "localhost": randomData(1 << 20)}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for host, data := range files {
		path := filepath.Join(root, host, "big.bin")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
	}
	port := testcaddy.FreePort(t)
	ip, local := fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://localhost:%d", port)
	testcaddy.StartCaddyfile(t, fmt.Sprintf("%s%s, %s {\n\tbind 127.0.0.1\n\troot * %s/{http.request.host}\n\t%s\n}\n",
		testcaddy.GlobalOptions(), ip, local, root, loadedModule), ip)

	_, stopSeed := seedCmd(t, ctx, local+"/big.bin", "--from", filepath.Join(root, "localhost", "big.bin"))
	waitFor(t, ctx, "the seeder to join", func() bool { return stats(t, local).Members == 1 })

	out := filepath.Join(t.TempDir(), "big.bin")
	r := getCmd(t, ctx, ip+"/big.bin", "-o", out)
	if r.code != 0 {
		t.Fatalf("get on 127.0.0.1: exit %d: %v\n%s", r.code, r.err, r.stderr)
	}
	checkFile(t, out, files["127.0.0.1"])
	t.Logf("get on 127.0.0.1:\n%s", r.stdout)
	stopSeed()
}
