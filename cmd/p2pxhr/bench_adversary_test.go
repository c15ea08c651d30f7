package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A small attack comparison end to end: honest Go peers against every
// attack kind, behind the real module; the report holds both phases, no
// wrong byte is written and no honest peer is banned.
func TestBenchAdversariesJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	r := benchCmd(t, ctx, "--peers", "4", "--size", "2MiB", "--block-size", "64KiB",
		"--origin-rate", "16MB/s", "--arrivals", "500ms", "--adversaries", "20%", "--json", "--timeout", "110s")
	if r.code != 0 {
		t.Fatalf("exit %d: %v\nstdout:\n%s\nstderr:\n%s", r.code, r.err, r.stdout, r.stderr)
	}
	var res adversaryResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout.String())), &res); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, r.stdout)
	}
	for _, k := range adversaryKinds {
		if res.Hosts[k] != 1 {
			t.Errorf("%d hosts of kind %s, want 1 (at least one per kind)", res.Hosts[k], k)
		}
	}
	if res.Identities["sybil"] != sybilIDs || res.Identities["eclipse"] != eclipseIDs || res.Identities["lie"] != 1 {
		t.Errorf("identities %v", res.Identities)
	}
	for name, ph := range map[string]adversaryPhase{"attack-free": res.AttackFree, "attacked": res.Attacked} {
		if ph.Completed != 4 || ph.CompletionRate != 1 || ph.WrongBytes != 0 || ph.HonestBanned != 0 || ph.Failure != "" {
			t.Errorf("%s: %+v", name, ph)
		}
		// Up to (N-1)/N without attackers; the slow attacker seeds right
		// bytes, so under attack the origin may send less than one copy.
		if ph.MeanSeconds <= 0 || ph.Offload < 0 || ph.Offload > 1 {
			t.Errorf("%s: mean %v, offload %v", name, ph.MeanSeconds, ph.Offload)
		}
	}
	if res.TimeRatio <= 0 {
		t.Errorf("time ratio %v", res.TimeRatio)
	}
	t.Logf("%s", r.stdout)
}

func TestBenchAdversaryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--adversaries", "lots"}, "--adversaries"},
		{[]string{"--adversaries", "120%"}, "--adversaries"},
		{[]string{"--adversaries", "-0.1"}, "--adversaries"},
		{[]string{"--adversaries", "0.2", "--adversary-kinds", "lie,flood"}, `"flood"`},
		{[]string{"--adversaries", "0.2", "--plot", "x.svg"}, "--plot"},
	} {
		r := benchCmd(t, context.Background(), tc.args...)
		if r.code != exitUsage || r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%q: exit %d, error %v; want exit 2 mentioning %q", tc.args, r.code, r.err, tc.want)
		}
	}
	if got := attackHosts(0.2, 20, adversaryKinds); len(got) != 6 || got[0] != "lie" || got[5] != "eclipse" {
		t.Errorf("20%% of 20 over six kinds: %v, want one host per kind", got)
	}
	if got := attackHosts(0.5, 20, []string{"lie", "sybil"}); len(got) != 10 || got[1] != "sybil" || got[2] != "lie" {
		t.Errorf("50%% of 20 over two kinds: %v", got)
	}
}
