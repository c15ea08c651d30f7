package browsertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind names a browser the driver can run.
type Kind string

// The browsers Debian installs for the tests.
const (
	Chromium Kind = "chromium"
	Firefox  Kind = "firefox"
)

// FirefoxPath is where Debian's firefox-esr package installs the browser.
const FirefoxPath = "/usr/bin/firefox-esr"

// RequireEnv, when set to 1 (test.sh sets it after installing the
// browsers), turns a missing browser or driver into a failure instead of
// a skip, so CI cannot pass by skipping every browser test.
const RequireEnv = "P2PXHR_REQUIRE_BROWSERS"

// Options choose the browser and where it runs.
type Options struct {
	// Kind is the browser; default Chromium.
	Kind Kind
	// Netns runs the browser inside this network namespace (needs root).
	Netns string
	// RealNetwork keeps the browser's default WebRTC privacy (mDNS host
	// names, no loopback candidates), as a visitor on the Internet has it.
	// Off, the browser is set up for WebRTC between tabs on loopback.
	RealNetwork bool
	// IgnoreCertificateErrors accepts `tls internal` certificates.
	IgnoreCertificateErrors bool
}

// Browser is one browser process driven by driver/driver.mjs through
// puppeteer-core (CDP for Chromium, WebDriver BiDi for Firefox). Unlike
// Start's chromedp, it runs Firefox too and works inside a network
// namespace, since it talks over the driver's stdin and stdout.
type Browser struct {
	// Version is what the browser reports, e.g. "firefox/153.8.0".
	Version string

	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan driverReply
	dead    error
	stderr  *lineLog
}

// Page is one tab of a Browser.
type Page struct {
	b  *Browser
	id int
}

type driverReply struct {
	ID    int             `json:"id"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
	Ready bool            `json:"ready"`
	Ver   string          `json:"version"`
}

// driverDir is the folder of driver.mjs and its node_modules.
func driverDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "driver")
}

// skipOrFail skips the test when a browser part is missing, or fails it
// when the environment requires browsers.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf(format+" (%s=1: browsers are required)", append(args, RequireEnv)...)
	}
	t.Skipf(format, args...)
}

// Launch starts a browser for the test through the driver, or skips the
// test when the browser, node or the driver's packages are missing
// (`npm ci` in internal/browsertest/driver; test.sh does it). The browser
// ends with the test.
func Launch(t *testing.T, o Options) *Browser {
	t.Helper()
	if o.Kind == "" {
		o.Kind = Chromium
	}
	exe := ChromiumPath
	if o.Kind == Firefox {
		exe = FirefoxPath
	}
	if _, err := os.Stat(exe); err != nil {
		skipOrFail(t, "no %s at %s: %v", o.Kind, exe, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skipOrFail(t, "no node to run the browser driver: %v", err)
	}
	dir := driverDir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "puppeteer-core")); err != nil {
		skipOrFail(t, "browser driver not installed (npm ci --prefix %s): %v", dir, err)
	}
	args, _ := json.Marshal(map[string]any{
		"kind":                    o.Kind,
		"executable":              exe,
		"realNetwork":             o.RealNetwork,
		"ignoreCertificateErrors": o.IgnoreCertificateErrors,
		"userDataDir":             t.TempDir(),
	})
	argv := []string{node, filepath.Join(dir, "driver.mjs"), string(args)}
	if o.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", o.Netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	// Its own process group, so the browser's children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b := &Browser{cmd: cmd, waiting: make(map[int]chan driverReply), stderr: &lineLog{}}
	cmd.Stderr = b.stderr
	if b.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the browser driver: %v", err)
	}
	ready := make(chan driverReply, 1)
	go b.readReplies(stdout, ready)
	t.Cleanup(func() {
		b.stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() || os.Getenv("P2PXHR_TEST_LOGS") != "" {
			t.Logf("%s driver output:\n%s", o.Kind, b.stderr)
		}
	})
	select {
	case r, ok := <-ready:
		if !ok {
			t.Fatalf("the %s driver ended before the browser was up:\n%s", o.Kind, b.stderr)
		}
		b.Version = r.Ver
	case <-time.After(60 * time.Second):
		t.Fatalf("the %s driver did not start within 60 s:\n%s", o.Kind, b.stderr)
	}
	return b
}

// readReplies hands each reply line to the request waiting for it.
func (b *Browser) readReplies(r io.Reader, ready chan<- driverReply) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var rep driverReply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			b.stderr.Write([]byte("driver: unreadable line: " + sc.Text() + "\n"))
			continue
		}
		if rep.Ready {
			ready <- rep
			continue
		}
		b.mu.Lock()
		ch := b.waiting[rep.ID]
		delete(b.waiting, rep.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
	b.mu.Lock()
	b.dead = errors.New("the browser driver exited")
	for id, ch := range b.waiting {
		close(ch)
		delete(b.waiting, id)
	}
	b.mu.Unlock()
	close(ready)
}

// call sends one request and waits for its reply at most d.
func (b *Browser) call(d time.Duration, req map[string]any) (json.RawMessage, error) {
	b.mu.Lock()
	if b.dead != nil {
		b.mu.Unlock()
		return nil, b.dead
	}
	b.nextID++
	id := b.nextID
	ch := make(chan driverReply, 1)
	b.waiting[id] = ch
	req["id"] = id
	line, _ := json.Marshal(req)
	_, err := b.stdin.Write(append(line, '\n'))
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, b.dead
		}
		if rep.Error != "" {
			return nil, errors.New(rep.Error)
		}
		return rep.Value, nil
	case <-timer.C:
		b.mu.Lock()
		delete(b.waiting, id)
		b.mu.Unlock()
		return nil, fmt.Errorf("no answer within %v", d)
	}
}

// Open opens a new tab on url and waits for its load event. Scripts in
// before run in the page before any of its own.
func (b *Browser) Open(t *testing.T, url string, before ...string) *Page {
	t.Helper()
	if before == nil {
		before = []string{}
	}
	v, err := b.call(60*time.Second, map[string]any{"op": "open", "url": url, "before": before})
	if err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	var id int
	if err := json.Unmarshal(v, &id); err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	return &Page{b: b, id: id}
}

// EvalErr evaluates a JavaScript expression in the page, awaiting a
// promise, bounded by d, and decodes its JSON value into out (nil to
// ignore it).
func (p *Page) EvalErr(d time.Duration, expr string, out any) error {
	v, err := p.b.call(d, map[string]any{"op": "eval", "page": p.id, "expr": expr})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(v, out)
}

// Eval is EvalErr that fails the test on error.
func (p *Page) Eval(t *testing.T, d time.Duration, expr string, out any) {
	t.Helper()
	if err := p.EvalErr(d, expr, out); err != nil {
		t.Fatalf("evaluating %.120s: %v", expr, err)
	}
}

// Close closes the tab.
func (p *Page) Close() error {
	_, err := p.b.call(30*time.Second, map[string]any{"op": "close", "page": p.id})
	return err
}

// lineLog collects the driver's stderr (page console lines, errors) for
// the test log.
type lineLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
