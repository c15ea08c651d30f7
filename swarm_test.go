package p2pxhr

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A loaded origin: every shareable byte goes through a shared 256 KiB/s.
const loadedModule = "p2pxhr {\n block_size 64KiB\n http_rate_limit 256KiB\n dashboard\n}\nfile_server"

func TestOneSeederThreeGetters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomData(3 << 20)
	base, root := site(t, loadedModule, map[string][]byte{"big.bin": data})
	url := base + "/big.bin"

	_, stopSeed := seedCmd(t, ctx, url, "--from", filepath.Join(root, "big.bin"))
	waitFor(t, ctx, "the seeder to join", func() bool { return stats(t, base).Members == 1 })

	dir := t.TempDir()
	runs := runGetters(t, ctx, url, dir, 3)
	for g, r := range runs {
		if r.code != 0 {
			t.Fatalf("getter %d: exit %d: %v\n%s", g, r.code, r.err, r.stderr)
		}
		checkFile(t, filepath.Join(dir, "out"+strconv.Itoa(g)), data)
		t.Logf("getter %d:\n%s", g, r.stdout)
		m := peersPercent.FindStringSubmatch(r.stdout.String())
		if m == nil {
			t.Fatalf("getter %d: no summary in %q", g, r.stdout)
		}
	}
	noPartFiles(t, dir)
	// The getters' own reports, as the coordinator added them up.
	s := stats(t, base)
	if s.BytesFromPeers+s.BytesFromHTTP != 3*int64(len(data)) || s.BytesFromPeers < 2*s.BytesFromHTTP {
		t.Errorf("stats %+v: want all 3 files reported and most bytes from peers", s)
	}
	if r := stopSeed(); r.code != 0 || !strings.Contains(r.stdout.String(), "uploaded") {
		t.Errorf("seed ended with %d (%v): %q", r.code, r.err, r.stdout)
	}
}

// midTransfer matches a get progress line at 1-59% with bytes from peers.
var midTransfer = regexp.MustCompile(`(?m)^\s*([1-9]|[1-5][0-9])% .*, [1-9][0-9]*% from peers`)

func TestSeedersKilledMidTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	data := randomData(2 << 20)
	base, root := site(t, "p2pxhr {\n block_size 64KiB\n http_rate_limit 512KiB\n dashboard\n}\nfile_server",
		map[string][]byte{"big.bin": data})
	url := base + "/big.bin"
	var stops []func() cmdRun
	for range 2 {
		_, stop := seedCmd(t, ctx, url, "--from", filepath.Join(root, "big.bin"))
		stops = append(stops, stop)
	}
	waitFor(t, ctx, "the seeders to join", func() bool { return stats(t, base).Members == 2 })

	dir := t.TempDir()
	var wg sync.WaitGroup
	runs := make([]cmdRun, 2)
	for g := range runs {
		runs[g] = cmdRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
		fs := flags(t, getFlags, url, "-o", filepath.Join(dir, "out"+strconv.Itoa(g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[g].code, runs[g].err = runGet(ctx, fs, runs[g].stdout, runs[g].stderr)
		}()
	}
	// Kill both seeders once a getter is under way with peers' help but
	// not past 60%: the getters are mid-transfer.
	waitFor(t, ctx, "a getter to be under way", func() bool {
		return midTransfer.MatchString(runs[0].stderr.String()) || midTransfer.MatchString(runs[1].stderr.String())
	})
	for _, stop := range stops {
		stop()
	}
	wg.Wait()
	for g, r := range runs {
		if r.code != 0 {
			t.Fatalf("getter %d: exit %d: %v\n%s", g, r.code, r.err, r.stderr)
		}
		checkFile(t, filepath.Join(dir, "out"+strconv.Itoa(g)), data)
		t.Logf("getter %d:\n%s", g, r.stdout)
	}
}

func TestGetWithCoordinatorUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := randomData(1 << 20)
	// The WebSocket route is refused before the module sees it.
	base, _ := site(t, "respond /_p2pxhr/ws 503\np2pxhr\nfile_server", map[string][]byte{"big.bin": data})
	out := filepath.Join(t.TempDir(), "big.bin")
	r := getCmd(t, ctx, base+"/big.bin", "-o", out)
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
	}
	checkFile(t, out, data)
	if !strings.Contains(r.stdout.String(), "from peers: 0 B (0%)") {
		t.Errorf("summary %q", r.stdout)
	}
	if !strings.Contains(r.stderr.String(), "503") {
		t.Errorf("the refused coordinator was not mentioned: %q", r.stderr)
	}
}

// percentLine matches a progress line between 1% and 99%.
var percentLine = regexp.MustCompile(`(?m)^\s*[1-9][0-9]?% `)

func TestGetOriginChangedMidDownload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old := randomData(768 << 10)
	neu := randomData(300<<10 + 123) // shorter: no byte of the old one may stay
	base, root := site(t, loadedModule, map[string][]byte{"f.bin": old})
	out := filepath.Join(t.TempDir(), "f.bin")

	done := make(chan cmdRun, 1)
	r := cmdRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() {
		r.code, r.err = runGet(ctx, flags(t, getFlags, base+"/f.bin", "-o", out), r.stdout, r.stderr)
		done <- r
	}()
	waitFor(t, ctx, "the download to be under way", func() bool { return percentLine.MatchString(r.stderr.String()) })
	// Replace it the way a deploy does: a new file renamed over the old.
	tmp := filepath.Join(root, ".f.bin.new")
	if err := os.WriteFile(tmp, neu, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "f.bin")); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-done:
	case <-ctx.Done():
		t.Fatal("get did not finish")
	}
	if r.code != 0 {
		t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
	}
	checkFile(t, out, neu)
	if !strings.Contains(r.stdout.String(), "restarted") {
		t.Errorf("no restart reported: %q", r.stdout)
	}
}

// runGetters runs n `get`s of url at once, writing dir/out0, dir/out1...
func runGetters(t *testing.T, ctx context.Context, url, dir string, n int) []cmdRun {
	t.Helper()
	var wg sync.WaitGroup
	runs := make([]cmdRun, n)
	for g := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[g] = getCmd(t, ctx, url, "-o", filepath.Join(dir, "out"+strconv.Itoa(g)))
		}()
	}
	wg.Wait()
	return runs
}
