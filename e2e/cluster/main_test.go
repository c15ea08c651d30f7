package cluster

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// nodeBinary is the p2pxhr binary TestMain builds for the nodes.
var nodeBinary string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse() // for testing.Verbose
	dir, err := os.MkdirTemp("", "p2pxhr-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	nodeBinary = filepath.Join(dir, "p2pxhr")
	args := []string{"build", "-o", nodeBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/p2pxhr/p2pxhr/cmd/p2pxhr")
	start := time.Now()
	if out, err := exec.Command(goTool(), args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %v: %v\n%s", args, err, out)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "built the node binary (race %v) in %v\n", raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	defer killAll() // tests stop their nodes; this catches any left behind
	return m.Run()
}

// goTool is the go command that runs the tests.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// running holds every node process not yet waited for.
var running = struct {
	sync.Mutex
	procs map[*os.Process]bool
}{procs: map[*os.Process]bool{}}

func track(p *os.Process) {
	running.Lock()
	running.procs[p] = true
	running.Unlock()
}

func untrack(p *os.Process) {
	running.Lock()
	delete(running.procs, p)
	running.Unlock()
}

func killAll() {
	running.Lock()
	defer running.Unlock()
	for p := range running.procs {
		p.Kill() // each node's own goroutine reaps it
		delete(running.procs, p)
	}
}
