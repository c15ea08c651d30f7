package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/pion/webrtc/v4"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/p2pxhr/p2pxhr/peer"
)

// Exit codes of get and seed (README "Command line").
const (
	exitOK      = 0
	exitFailure = 1 // the server, the network, the content or the disk failed
	exitUsage   = 2 // bad flags or URL: retrying will not help
)

// usageError marks errors that exit with exitUsage.
type usageError struct{ error }

// addPeerFlags adds the flags every P2P subcommand shares.
func addPeerFlags(fs *pflag.FlagSet) {
	fs.String("prefix", peer.DefaultPrefix, "route prefix of the p2pxhr module on the site")
	fs.StringArray("ice-server", nil, "STUN/TURN server URL, repeatable (turn:user:pass@host:port for credentials)")
}

// parseResourceURL accepts only absolute http(s) URLs with a host.
func parseResourceURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, usageError{fmt.Errorf("bad URL %q: %v", s, err)}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("bad URL %q: want an absolute http:// or https:// URL", s)}
	}
	return u, nil
}

// isLoopback reports whether host names this machine, where peers reach
// each other over loopback with no STUN server.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseICEServers reads --ice-server values: stun:host:port,
// turn:host:port?transport=udp, or with credentials turn:user:pass@host:port.
func parseICEServers(vals []string) ([]webrtc.ICEServer, error) {
	var out []webrtc.ICEServer
	for _, v := range vals {
		scheme, rest, ok := strings.Cut(v, ":")
		switch strings.ToLower(scheme) {
		case "stun", "stuns", "turn", "turns":
		default:
			ok = false
		}
		if !ok || rest == "" {
			return nil, usageError{fmt.Errorf("--ice-server %q: want stun:host:port or turn:[user:pass@]host:port", v)}
		}
		s := webrtc.ICEServer{URLs: []string{v}}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, pass, _ := strings.Cut(rest[:at], ":")
			s = webrtc.ICEServer{URLs: []string{scheme + ":" + rest[at+1:]}, Username: user, Credential: pass}
		}
		out = append(out, s)
	}
	return out, nil
}

// prefixFlag returns --prefix with the slashes the module's routes have.
func prefixFlag(fs *pflag.FlagSet) string {
	p, _ := fs.GetString("prefix")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// newPeerClient returns a peer.Client for the site of u that signals
// through the site's coordinator. The coordinator is reached in the
// background: if it is down, transfers go on over HTTP.
func newPeerClient(u *url.URL, fs *pflag.FlagSet, logf func(string, ...any), progress func(peer.Progress)) (*peer.Client, error) {
	iceVals, _ := fs.GetStringArray("ice-server")
	ice, err := parseICEServers(iceVals)
	if err != nil {
		return nil, err
	}
	prefix := prefixFlag(fs)
	cc, err := peer.NewCoordClient(u.Scheme+"://"+u.Host, peer.CoordOptions{Prefix: prefix, Logf: dedupe(logf)})
	if err != nil {
		return nil, usageError{err}
	}
	c, err := peer.New(peer.Options{
		Signaller: cc,
		RTC:       peer.RTCConfig{ICEServers: ice, Loopback: isLoopback(u.Hostname())},
		Prefix:    prefix,
		Progress:  progress,
	})
	if err != nil {
		cc.Close()
		return nil, err
	}
	return c, nil
}

// dedupe drops a log line equal to the one before it, so a coordinator
// that stays unreachable is reported once, not at every retry.
func dedupe(logf func(string, ...any)) func(string, ...any) {
	var mu sync.Mutex
	last := ""
	return func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		mu.Lock()
		same := line == last
		last = line
		mu.Unlock()
		if !same {
			logf("%s", line)
		}
	}
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// explain turns an error into what a user of the command needs to read.
func explain(err error, u *url.URL) error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("server %s unreachable: %w", u.Host, err)
	}
	return err
}

// exitCode maps an error to the command's exit status.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailure
}

// isTerminal reports whether w is a terminal, where progress redraws one
// line instead of printing a line per second.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// formatBytes prints n in binary units, the way sizes are configured.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return part * 100 / whole
}
