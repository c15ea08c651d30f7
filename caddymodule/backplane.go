package caddymodule

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

// BackplaneConfig lets several Caddy nodes behind one name share swarms
// through NATS (docs/PROTOCOL.md §5). Without it each node's swarms are
// its own. Secrets may be runtime placeholders such as {env.NATS_TOKEN}.
type BackplaneConfig struct {
	// Type is "nats", the only backplane there is (the default).
	Type string `json:"type,omitempty"`
	// URLs of the NATS servers: nats://host:4222, tls://host:4222.
	URLs []string `json:"urls"`
	// Cluster names the nodes that share swarms; subjects start with
	// p2pxhr.<cluster>. Default "default". Letters, digits, '_' and '-'.
	Cluster string `json:"cluster,omitempty"`
	// Node names this node in stats; a random suffix is added each time
	// the config loads, so an old and a new config never share an id
	// during a reload. Default: random.
	Node string `json:"node,omitempty"`

	// Credentials is a NATS .creds file (JWT and NKey seed).
	Credentials string `json:"credentials,omitempty"`
	User        string `json:"user,omitempty"`
	Password    string `json:"password,omitempty"`
	Token       string `json:"token,omitempty"`
	// TLSCA verifies the servers; TLSCert and TLSKey are a client
	// certificate for mutual TLS.
	TLSCA   string `json:"tls_ca,omitempty"`
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`

	// HeartbeatInterval (default 1s) and HeartbeatTTL (default 3×): a
	// node silent for the TTL is dropped with its peers.
	HeartbeatInterval caddy.Duration `json:"heartbeat_interval,omitempty"`
	HeartbeatTTL      caddy.Duration `json:"heartbeat_ttl,omitempty"`
}

// newBackplane connects the configured backplane; nil (and no error)
// when none is configured, and the coordinator keeps swarms in memory.
// It fails when NATS cannot be reached, so a config that cannot share
// swarms does not load.
func (h *Handler) newBackplane() (coordinator.Backplane, error) {
	cfg := h.Backplane
	if cfg == nil {
		return nil, nil
	}
	if cfg.Type != "" && cfg.Type != "nats" {
		return nil, fmt.Errorf("backplane: unknown type %q; the only one is nats", cfg.Type)
	}
	repl := caddy.NewReplacer()
	node := cfg.Node
	if node != "" {
		// The suffix keeps a reload's new instance apart from the old one
		// it briefly overlaps (both would read the same inbox otherwise).
		node += "-" + randomSuffix()
	}
	log := h.logger
	if log != nil {
		log = log.Named("backplane")
	}
	bp, err := coordinator.NewNATSBackplane(coordinator.NATSOptions{
		URLs:              cfg.URLs,
		Cluster:           cfg.Cluster,
		NodeID:            node,
		CredentialsFile:   repl.ReplaceKnown(cfg.Credentials, ""),
		User:              repl.ReplaceKnown(cfg.User, ""),
		Password:          repl.ReplaceKnown(cfg.Password, ""),
		Token:             repl.ReplaceKnown(cfg.Token, ""),
		TLSCAFile:         repl.ReplaceKnown(cfg.TLSCA, ""),
		TLSCertFile:       repl.ReplaceKnown(cfg.TLSCert, ""),
		TLSKeyFile:        repl.ReplaceKnown(cfg.TLSKey, ""),
		HeartbeatInterval: time.Duration(cfg.HeartbeatInterval),
		HeartbeatTTL:      time.Duration(cfg.HeartbeatTTL),
		Logger:            log,
	})
	if err != nil {
		return nil, fmt.Errorf("backplane: %w", err)
	}
	return bp, nil
}

func randomSuffix() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// parseBackplane reads the backplane subdirective of the p2pxhr block,
// the dispenser on its name:
//
//	backplane nats <url...> {
//	    cluster     <name>
//	    node        <name>
//	    credentials <file>
//	    user        <user>
//	    password    <password>
//	    token       <token>
//	    tls_ca      <file>
//	    tls_cert    <file>
//	    tls_key     <file>
//	    heartbeat   <interval> [<ttl>]
//	}
func parseBackplane(d *caddyfile.Dispenser, h *Handler) error {
	if h.Backplane != nil {
		return d.Errf("backplane given twice")
	}
	args := d.RemainingArgs()
	if len(args) < 2 || args[0] != "nats" {
		return d.Errf("backplane takes nats and at least one server URL, such as: backplane nats nats://10.0.0.5:4222")
	}
	cfg := &BackplaneConfig{Type: "nats", URLs: args[1:]}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		if name == "heartbeat" {
			vals := d.RemainingArgs()
			if len(vals) < 1 || len(vals) > 2 {
				return d.Errf("heartbeat takes an interval and optionally a TTL, such as: heartbeat 1s 3s")
			}
			targets := []*caddy.Duration{&cfg.HeartbeatInterval, &cfg.HeartbeatTTL}
			for i, v := range vals {
				dur, err := caddy.ParseDuration(v)
				if err != nil || dur <= 0 {
					return d.Errf("heartbeat: %q is not a duration such as 1s", v)
				}
				*targets[i] = caddy.Duration(dur)
			}
			continue
		}
		field := map[string]*string{
			"cluster": &cfg.Cluster, "node": &cfg.Node, "credentials": &cfg.Credentials,
			"user": &cfg.User, "password": &cfg.Password, "token": &cfg.Token,
			"tls_ca": &cfg.TLSCA, "tls_cert": &cfg.TLSCert, "tls_key": &cfg.TLSKey,
		}[name]
		if field == nil {
			return d.Errf("unknown backplane option %q; expected one of: cluster, node, credentials, user, password, token, tls_ca, tls_cert, tls_key, heartbeat", name)
		}
		if !d.NextArg() {
			return d.Errf("%s needs a value", name)
		}
		*field = d.Val()
		if d.NextArg() {
			return d.Errf("%s takes one value, got an extra %q", name, d.Val())
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return d.Errf("tls_cert and tls_key go together")
	}
	h.Backplane = cfg
	return nil
}
