// Package netnstest builds small routed networks of Linux network
// namespaces for tests: a router namespace and one namespace per host,
// each host alone on its own /24 behind the router, with a default route
// (Chromium gathers no ICE candidates without one). There is no NAT (the
// kernel here has none), but hosts on different networks already cannot
// resolve each other's mDNS host candidates, which is what breaks WebRTC
// between real visitors.
//
// Creating namespaces needs root and the ip command; Routed skips the test
// otherwise. Every namespace is named with a per-process prefix and
// removed when the test ends, and namespaces a killed test process left
// behind are removed by the next one.
package netnstest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namePrefix starts every namespace this package makes; the process id
// follows it, so stale ones can be told from live ones.
const namePrefix = "p2x"

// Network is a router and the hosts routed through it.
type Network struct {
	// Router is the name of the router's namespace.
	Router string
	// Hosts are in the order their names were given.
	Hosts []*Host
}

// Host is one namespace with one address on its own network.
type Host struct {
	// Name is the namespace's name, for `ip netns exec`.
	Name string
	// Label is the name the test gave it.
	Label string
	// Addr is the host's address; Gateway the router's on its network.
	Addr, Gateway netip.Addr
	// Device is the host's interface toward the router.
	Device string
}

// Host returns the host labelled label.
func (n *Network) Host(label string) *Host {
	for _, h := range n.Hosts {
		if h.Label == label {
			return h
		}
	}
	panic("netnstest: no host " + label)
}

var sweepOnce sync.Once

// Routed creates a router namespace and one host namespace per label, the
// i-th host at 10.77.<i+1>.2/24 with the router at .1, and removes them
// all when the test ends. It skips the test unless it can (root, ip).
func Routed(t *testing.T, labels ...string) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need the ip command (iproute2)")
	}
	sweepOnce.Do(sweepStale)
	var rnd [3]byte
	rand.Read(rnd[:])
	id := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(rnd[:]))
	n := &Network{Router: id + "-r"}
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			remove(made[i])
		}
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	add := func(ns string) {
		t.Helper()
		run("netns", "add", ns)
		made = append(made, ns)
		// No IPv6: its link-local address would appear a second after the
		// link comes up, and Chromium aborts its requests in flight on that
		// change (net::ERR_NETWORK_CHANGED: a test page lost its script).
		if out, err := exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw",
			"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
			t.Fatalf("disabling IPv6 in %s: %v\n%s", ns, err, out)
		}
		run("-n", ns, "link", "set", "lo", "up")
	}
	add(n.Router)
	if out, err := exec.Command("ip", "netns", "exec", n.Router, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("enabling forwarding in %s: %v\n%s", n.Router, err, out)
	}
	for i, label := range labels {
		h := &Host{
			Name:    fmt.Sprintf("%s-%d", id, i+1),
			Label:   label,
			Addr:    netip.AddrFrom4([4]byte{10, 77, byte(i + 1), 2}),
			Gateway: netip.AddrFrom4([4]byte{10, 77, byte(i + 1), 1}),
			// Interface names are at most 15 bytes.
			Device: fmt.Sprintf("h%s%d", hex.EncodeToString(rnd[:]), i+1),
		}
		routerDev := fmt.Sprintf("r%s%d", hex.EncodeToString(rnd[:]), i+1)
		add(h.Name)
		run("link", "add", routerDev, "netns", n.Router, "type", "veth", "peer", "name", h.Device, "netns", h.Name)
		run("-n", n.Router, "addr", "add", h.Gateway.String()+"/24", "dev", routerDev)
		run("-n", n.Router, "link", "set", routerDev, "up")
		run("-n", h.Name, "addr", "add", h.Addr.String()+"/24", "dev", h.Device)
		run("-n", h.Name, "link", "set", h.Device, "up")
		run("-n", h.Name, "route", "add", "default", "via", h.Gateway.String())
		n.Hosts = append(n.Hosts, h)
	}
	return n
}

// remove deletes a namespace, first killing what still runs in it (a
// namespace lives on while a process holds it).
func remove(ns string) {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			// Never ourselves: a thread of ours that entered the
			// namespace would make the process look like it lives there.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
}

// sweepStale removes namespaces of test processes that no longer run (a
// test killed before its cleanup).
func sweepStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(ns, namePrefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			remove(ns)
		}
	}
}

// Command is exec.Command run inside the host's namespace.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// CommandContext is exec.CommandContext run inside the host's namespace.
func (h *Host) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// inside runs f on a thread in the host's namespace: the sockets f makes
// belong to it, and keep working from any thread afterwards.
func inside[T any](h *Host, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			var zero T
			ch <- result{zero, err}
			return
		}
		defer home.Close()
		if err := enter(h.Name); err != nil {
			var zero T
			ch <- result{zero, err}
			return
		}
		v, err := f()
		ch <- result{v, err}
		// Back home before the thread returns to the pool. If that fails
		// the thread stays locked and ends with this goroutine (or, for
		// the main thread, is parked for good).
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	r := <-ch
	return r.v, r.err
}

// Do runs f on a thread inside the host's namespace, for code that opens
// its sockets synchronously (caddy.Load does: a Caddy so loaded serves
// inside the namespace).
func (h *Host) Do(f func() error) error {
	_, err := inside(h, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

// DialContext dials from inside the host's namespace, so the test
// process (in its own namespace) can reach servers there.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return inside(h, func() (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	})
}

// Listen listens inside the host's namespace.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	return inside(h, func() (net.Listener, error) { return net.Listen(network, addr) })
}

// ListenPacket listens for datagrams inside the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	return inside(h, func() (net.PacketConn, error) { return net.ListenPacket(network, addr) })
}

// HTTPClient is an HTTP client whose connections start inside the host's
// namespace. It accepts any certificate (`tls internal` in tests).
func (h *Host) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = h.DialContext
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func enter(ns string) error {
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering network namespace %s: %w", ns, err)
	}
	return nil
}

// Shape limits the rate at which the host sends, as a server's uplink
// does (a token bucket qdisc on its interface).
func (h *Host) Shape(t *testing.T, rate string) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.Name, "tc", "qdisc", "add", "dev", h.Device,
		"root", "tbf", "rate", rate, "burst", "64kb", "latency", "400ms").CombinedOutput()
	if err != nil {
		t.Fatalf("shaping %s to %s: %v\n%s", h.Label, rate, err, out)
	}
}
