//go:build unix

package caddymodule

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rangeCacheOwnerEnv makes the test binary a process that opens a range
// cache under the given base, prints its directory and waits to be killed.
const rangeCacheOwnerEnv = "P2PXHR_TEST_RANGE_CACHE_OWNER"

func TestMain(m *testing.M) {
	if base := os.Getenv(rangeCacheOwnerEnv); base != "" {
		c, err := newRangeCache(base, 1<<20, nopLogger())
		if err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString(c.dir + "\n")
		time.Sleep(time.Minute) // killed long before
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startCacheOwner runs a process holding a range cache under base and
// returns it with its directory.
func startCacheOwner(t *testing.T, base string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), rangeCacheOwnerEnv+"="+base)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(strings.TrimSpace(line), base) {
		t.Fatalf("cache owner said %q, %v", line, err)
	}
	return cmd, strings.TrimSpace(line)
}

// The cache directory of a killed process is removed when a cache next
// starts under the same base; those of live processes, this one's
// included, stay.
func TestStaleRangeCachesAreRemovedAtStart(t *testing.T) {
	base := t.TempDir()
	killed, deadDir := startCacheOwner(t, base)
	_, liveDir := startCacheOwner(t, base)
	mine, err := newRangeCache(base, 1<<20, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer mine.close()
	legacy := filepath.Join(base, "cache-123456") // left by a version without locks
	if err := os.MkdirAll(legacy, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(deadDir, "fill-1"), []byte("a stale copy"), 0o600)

	killed.Process.Kill() // SIGKILL: no cleanup runs
	killed.Wait()
	next, err := newRangeCache(base, 1<<20, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer next.close()
	for dir, wantGone := range map[string]bool{deadDir: true, legacy: true, liveDir: false, mine.dir: false, next.dir: false} {
		_, err := os.Stat(dir)
		if gone := os.IsNotExist(err); gone != wantGone {
			t.Errorf("%s: gone %v, want %v", filepath.Base(dir), gone, wantGone)
		}
	}
}
