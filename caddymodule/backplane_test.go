package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

func TestParseBackplane(t *testing.T) {
	d := caddyfile.NewTestDispenser(`backplane nats nats://10.0.0.5:4222 tls://10.0.0.6:4222 {
		cluster     site1
		node        web1
		credentials /etc/nats/p2pxhr.creds
		user        u
		password    {env.NATS_PASSWORD}
		token       tok
		tls_ca      /etc/nats/ca.pem
		tls_cert    /etc/nats/cert.pem
		tls_key     /etc/nats/key.pem
		heartbeat   500ms 2s
	}`)
	d.Next()
	var h Handler
	if err := parseBackplane(d, &h); err != nil {
		t.Fatal(err)
	}
	want := BackplaneConfig{Type: "nats", URLs: []string{"nats://10.0.0.5:4222", "tls://10.0.0.6:4222"},
		Cluster: "site1", Node: "web1", Credentials: "/etc/nats/p2pxhr.creds", User: "u",
		Password: "{env.NATS_PASSWORD}", Token: "tok", TLSCA: "/etc/nats/ca.pem", TLSCert: "/etc/nats/cert.pem",
		TLSKey: "/etc/nats/key.pem", HeartbeatInterval: caddy.Duration(500 * time.Millisecond),
		HeartbeatTTL: caddy.Duration(2 * time.Second)}
	got, _ := json.Marshal(h.Backplane)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("parsed\n%s\nwant\n%s", got, exp)
	}
	if j, _ := json.Marshal(&h); !strings.Contains(string(j), `"backplane":{"type":"nats","urls":[`) {
		t.Errorf("handler JSON: %s", j)
	}
	// The bare form: no block.
	d = caddyfile.NewTestDispenser("backplane nats nats://127.0.0.1:4222")
	d.Next()
	h = Handler{}
	if err := parseBackplane(d, &h); err != nil || len(h.Backplane.URLs) != 1 {
		t.Errorf("bare form: %v %+v", err, h.Backplane)
	}
}

func TestParseBackplaneErrors(t *testing.T) {
	for input, want := range map[string]string{
		"backplane nats":                                      "at least one server URL",
		"backplane redis redis://x":                           "backplane takes nats",
		"backplane nats nats://x {\n colour blue\n}":          `unknown backplane option "colour"`,
		"backplane nats nats://x {\n token\n}":                "token needs a value",
		"backplane nats nats://x {\n user a b\n}":             `extra "b"`,
		"backplane nats nats://x {\n tls_cert c.pem\n}":       "tls_cert and tls_key go together",
		"backplane nats nats://x {\n heartbeat soon\n}":       `"soon" is not a duration`,
		"backplane nats nats://x {\n heartbeat 1s 2s 3s\n}":   "heartbeat takes an interval",
		"backplane nats nats://x {\n heartbeat -1s\n}":        "not a duration",
		"backplane nats nats://x {\n cluster a\n cluster\n}":  "cluster needs a value",
		"backplane nats nats://x\nbackplane nats nats://y\n}": "backplane given twice",
	} {
		d := caddyfile.NewTestDispenser(input)
		var h Handler
		var err error
		for d.Next() && err == nil {
			err = parseBackplane(d, &h)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", input, err, want)
		}
	}
}

func TestNewBackplane(t *testing.T) {
	var h Handler
	if bp, err := h.newBackplane(); bp != nil || err != nil {
		t.Fatalf("no backplane configured: %v %v", bp, err)
	}
	h.Backplane = &BackplaneConfig{URLs: []string{"nats://127.0.0.1:1"}}
	if _, err := h.newBackplane(); err == nil || !strings.Contains(err.Error(), "cannot reach NATS at nats://127.0.0.1:1") {
		t.Fatalf("unreachable NATS: %v", err)
	}
	h.Backplane.Type = "zookeeper"
	if _, err := h.newBackplane(); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Fatalf("unknown type: %v", err)
	}

	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		NoLog: true, NoSigs: true, Authorization: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Setenv("P2PXHR_TEST_NATS_TOKEN", "s3cret")
	h.Backplane = &BackplaneConfig{URLs: []string{"nats://" + ns.Addr().String()}, Cluster: "site1", Node: "web1",
		Token: "{env.P2PXHR_TEST_NATS_TOKEN}"}
	bp, err := h.newBackplane()
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close()
	if id := bp.(*coordinator.NATSBackplane).NodeID(); !strings.HasPrefix(id, "web1-") {
		t.Errorf("node id %q", id)
	}
	h.Backplane.Token = "wrong"
	if _, err := h.newBackplane(); err == nil || !strings.Contains(err.Error(), "cannot reach NATS") {
		t.Errorf("a wrong token: %v", err)
	}
}
