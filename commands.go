package p2pxhr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
	"github.com/spf13/pflag"

	"github.com/p2pxhr/p2pxhr/internal/cli"
	"github.com/p2pxhr/p2pxhr/peer"
)

// addPeerFlags adds the flags every P2P subcommand shares.
func addPeerFlags(fs *pflag.FlagSet) {
	fs.String("prefix", peer.DefaultPrefix, "route prefix of the p2pxhr module on the site")
	fs.StringArray("ice-server", nil, "STUN/TURN server URL, repeatable (turn:user:pass@host:port for credentials)")
}

// parseResourceURL accepts only absolute http(s) URLs with a host.
func parseResourceURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("bad URL %q: %v", s, err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, cli.Usage(fmt.Errorf("bad URL %q: want an absolute http:// or https:// URL", s))
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
			return nil, cli.Usage(fmt.Errorf("--ice-server %q: want stun:host:port or turn:[user:pass@]host:port", v))
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
		return nil, cli.Usage(err)
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

func percent(part, whole int64) int64 {
	if whole <= 0 {
		return 0
	}
	return part * 100 / whole
}
