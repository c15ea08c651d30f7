package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/p2pxhr/p2pxhr/peer"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// adversaryKinds are the attacks bench --adversaries can mount, in the
// order hosts are assigned to them.
var adversaryKinds = []string{"lie", "reject", "silent", "slow", "sybil", "eclipse"}

// Identities per attacking host of a kind: sybils and eclipsers are many
// connections from one host; the others are one peer each.
const (
	sybilIDs   = 3
	eclipseIDs = 12 // the number that hid a seeder in issue 14
	// slowRate is the slow attacker's pace: honest bytes, a 256 KiB block
	// in 4 s, inside the 8 s request deadline.
	slowRate = 64 << 10
)

// attackerIP is the address attacking host h connects from: 127.1.(h+1).1,
// a network of its own, apart from the honest visitors' 127.0.x.1.
func attackerIP(h int) net.IP { return net.IPv4(127, 1, byte(1+h), 1) }

// attackHosts assigns kinds to hosts: round(fraction × n) hosts, at least
// one per kind, kinds in turn.
func attackHosts(fraction float64, n int, kinds []string) []string {
	k := max(len(kinds), int(fraction*float64(n)+0.5))
	hosts := make([]string, k)
	for h := range hosts {
		hosts[h] = kinds[h%len(kinds)]
	}
	return hosts
}

// attack is the attacking hosts of one phase, running until stop.
type attack struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	clients []*peer.Client
	coords  []*peer.CoordClient
	kindOf  map[*peer.CoordClient]string
	members int // swarm memberships the attack makes
}

// startAttack connects every attacking host to the site's swarm for the
// bench file. ref is the file's bytes (liars and slow peers hold it).
func startAttack(ctx context.Context, site *benchSite, hosts []string, ref []byte) (*attack, error) {
	actx, cancel := context.WithCancel(ctx)
	a := &attack{cancel: cancel, kindOf: map[*peer.CoordClient]string{}}
	m, err := peer.FetchManifest(ctx, ownHTTPClient(), site.fileURL(), peer.DefaultPrefix)
	if err != nil {
		cancel()
		return nil, err
	}
	for h, kind := range hosts {
		ip := attackerIP(h)
		if kind == "eclipse" {
			for range eclipseIDs {
				if err := a.idleJoiner(actx, site, ip, m); err != nil {
					a.stop()
					return nil, err
				}
			}
			continue
		}
		var mis peer.Misbehaviour
		from := bytes.NewReader(nil) // holds nothing
		ids := 1
		switch kind {
		case "lie":
			mis, from = peer.Misbehaviour{Corrupt: func(int) bool { return true }}, bytes.NewReader(ref)
		case "reject":
			mis = peer.Misbehaviour{ClaimAll: true, Reject: true, RejectReason: protocol.RejectBusy}
		case "silent":
			mis = peer.Misbehaviour{ClaimAll: true, Silent: true}
		case "slow":
			mis, from = peer.Misbehaviour{Trickle: slowRate}, bytes.NewReader(ref)
		case "sybil":
			mis, ids = peer.Misbehaviour{FalseReport: protocol.ReportBadBlock}, sybilIDs
		}
		for range ids {
			if err := a.seeder(actx, site, ip, kind, mis, from); err != nil {
				a.stop()
				return nil, err
			}
		}
	}
	return a, nil
}

func (a *attack) track(cc *peer.CoordClient, kind string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.coords = append(a.coords, cc)
	a.kindOf[cc] = kind
	a.members++
}

// seeder is one misbehaving peer seeding from `from`.
func (a *attack) seeder(ctx context.Context, site *benchSite, ip net.IP, kind string, m peer.Misbehaviour, from *bytes.Reader) error {
	cc, err := coordClientFrom(site.base, ip)
	if err != nil {
		return err
	}
	c, err := peer.NewMisbehaving(peer.Options{Signaller: cc, RTC: peer.RTCConfig{Loopback: true}, HTTPClient: ownHTTPClient()}, m)
	if err != nil {
		cc.Close()
		return err
	}
	a.track(cc, kind)
	a.mu.Lock()
	a.clients = append(a.clients, c)
	a.mu.Unlock()
	r := io.NewSectionReader(from, 0, from.Size()) // each its own reader
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		_ = c.Seed(ctx, site.fileURL(), r)
	}()
	return nil
}

// idleJoiner joins the swarm over the WebSocket alone and never signals.
func (a *attack) idleJoiner(ctx context.Context, site *benchSite, ip net.IP, m *protocol.Manifest) error {
	cc, err := coordClientFrom(site.base, ip)
	if err != nil {
		return err
	}
	a.track(cc, "eclipse")
	for _, ch := range []func(){
		func() {
			for range cc.Neighbours() {
			}
		},
		func() {
			for range cc.Signals() {
			}
		},
	} {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); ch() }()
	}
	return cc.Join(ctx, m.ID, "", make([]bool, len(m.Blocks)))
}

// ids maps each attacking identity's current peer id to its kind.
func (a *attack) ids() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]string{}
	for _, cc := range a.coords {
		if id := cc.ID(); id != "" {
			out[id] = a.kindOf[cc]
		}
	}
	return out
}

// identities counts the attacking identities of each kind.
func (a *attack) identities() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for _, k := range a.kindOf {
		out[k]++
	}
	return out
}

// stop disconnects every attacker and waits for them.
func (a *attack) stop() {
	a.cancel()
	a.mu.Lock()
	clients, coords := a.clients, a.coords
	a.mu.Unlock()
	for _, c := range clients {
		c.Close() // closes its signaller too
	}
	for _, cc := range coords {
		cc.Close() // a second Close is a no-op
	}
	a.wg.Wait()
}

// coordEvent is one line of the coordinator's log that the bench reads.
type coordEvent struct {
	Msg    string `json:"msg"`
	Peer   string `json:"peer"`
	From   string `json:"from"`
	Reason string `json:"reason"`
}

// coordinatorEvents reads the coordinator's log (the bench site writes it
// as JSON lines): bans, reporters that lost standing, and every report.
func coordinatorEvents(path string) ([]coordEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []coordEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e coordEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// adversaryPhase is one P2P phase of the honest swarm.
type adversaryPhase struct {
	Completed      int     `json:"completed"`
	CompletionRate float64 `json:"completionRate"`
	WrongBytes     int64   `json:"wrongBytes"`
	MeanSeconds    float64 `json:"meanSeconds"`
	P50Seconds     float64 `json:"p50Seconds"`
	P95Seconds     float64 `json:"p95Seconds"`
	Offload        float64 `json:"offload"`
	OriginBytes    int64   `json:"originBytes"`
	HonestBanned   int     `json:"honestBanned"`
	HonestLost     int     `json:"honestLostStanding"`
	// Reports counts the coordinator's reports by reason and sides, as
	// "reason reporter→reported" with sides "honest" or an attack kind.
	Reports map[string]int `json:"reports"`
	Failure string         `json:"failure,omitempty"`
	Seconds []float64      `json:"seconds"`
}

// adversaryResult is bench --adversaries' figures for one N; its JSON is
// the --json output.
type adversaryResult struct {
	Peers       int            `json:"peers"`
	Size        int64          `json:"size"`
	BlockSize   int64          `json:"blockSize"`
	OriginRate  int64          `json:"originRate"`
	Arrivals    float64        `json:"arrivalsSeconds"`
	Adversaries float64        `json:"adversaries"`
	Hosts       map[string]int `json:"hosts"`      // attacking hosts per kind
	Identities  map[string]int `json:"identities"` // their peer ids per kind
	AttackFree  adversaryPhase `json:"attackFree"`
	Attacked    adversaryPhase `json:"attacked"`
	// TimeRatio is the honest mean completion time under attack over the
	// same swarm's without attackers.
	TimeRatio float64 `json:"timeRatio"`
	// AttackersBanned and AttackersLost count, per kind, the attacking
	// identities the coordinator banned and those whose reports it stopped
	// counting.
	AttackersBanned map[string]int `json:"attackersBanned"`
	AttackersLost   map[string]int `json:"attackersLostStanding"`
	// UnknownIDs counts bans and losses of standing of ids neither side
	// claims (a peer that reconnected under a new id).
	UnknownIDs int  `json:"unknownIds"`
	GoalsMet   bool `json:"goalsMet"`
}

// adversaryGoals are issue 14's: every honest download completes, no wrong
// byte, no honest peer banned, honest time at most 1.5× the attack-free.
func (r *adversaryResult) checkGoals() {
	a := r.Attacked
	r.GoalsMet = a.CompletionRate == 1 && a.WrongBytes == 0 && r.AttackFree.WrongBytes == 0 &&
		a.HonestBanned == 0 && r.TimeRatio > 0 && r.TimeRatio <= 1.5
}

// benchAdversaries measures one N: the honest swarm alone, then the same
// swarm with the attackers, each on a fresh site.
func benchAdversaries(ctx context.Context, cfg benchConfig, n int, prog *benchProgress) (adversaryResult, error) {
	hosts := attackHosts(cfg.adversaries, n, cfg.adversaryKinds)
	r := adversaryResult{Peers: n, Size: cfg.size, BlockSize: cfg.blockSize, OriginRate: cfg.originRate,
		Arrivals: cfg.arrivals.Seconds(), Adversaries: cfg.adversaries, Hosts: map[string]int{},
		AttackersBanned: map[string]int{}, AttackersLost: map[string]int{}}
	for _, k := range hosts {
		r.Hosts[k]++
	}
	var err error
	if r.AttackFree, _, err = adversaryRun(ctx, cfg, n, nil, prog, &r); err != nil {
		return r, fmt.Errorf("attack-free phase: %w", err)
	}
	if r.Attacked, r.Identities, err = adversaryRun(ctx, cfg, n, hosts, prog, &r); err != nil {
		return r, fmt.Errorf("attacked phase: %w", err)
	}
	if r.AttackFree.MeanSeconds > 0 {
		r.TimeRatio = float64(int(r.Attacked.MeanSeconds/r.AttackFree.MeanSeconds*1000+0.5)) / 1000
	}
	r.checkGoals()
	return r, nil
}

// adversaryRun is one phase: a fresh site, the attackers (if any) in place
// first, then the honest peers arriving as in the plain bench.
func adversaryRun(ctx context.Context, cfg benchConfig, n int, hosts []string, prog *benchProgress, r *adversaryResult) (adversaryPhase, map[string]int, error) {
	var ph adversaryPhase
	logFile, err := os.CreateTemp("", "p2pxhr-bench-coordinator-*.log")
	if err != nil {
		return ph, nil, err
	}
	logFile.Close()
	defer os.Remove(logFile.Name())
	scfg := cfg
	scfg.coordinatorLog = logFile.Name()
	site, err := startBenchSite(ctx, scfg)
	if err != nil {
		return ph, nil, err
	}
	stopped := false
	stopSite := func() {
		if !stopped {
			site.stop()
			stopped = true
		}
	}
	defer stopSite()
	ref, err := site.originBytesCopy(ctx, cfg.size)
	if err != nil {
		return ph, nil, fmt.Errorf("reference copy: %w", err)
	}
	want := sha256.Sum256(ref)
	var atk *attack
	if len(hosts) > 0 {
		if atk, err = startAttack(ctx, site, hosts, ref); err != nil {
			return ph, nil, err
		}
		defer atk.stop()
		// The attackers are in the swarm before the first visitor comes.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st, err := site.swarmMembers(ctx)
			if err == nil && st >= atk.members {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return ph, nil, fmt.Errorf("the attackers did not join (%d of %d memberships): %v", st, atk.members, err)
			}
		}
	}
	name := "attack-free"
	if atk != nil {
		name = "under attack"
	}
	res, err := runP2PPhase(ctx, site, cfg, name, n, want, ref, prog)
	if err != nil {
		return ph, nil, err
	}
	var attackerIDs map[string]string
	var identities map[string]int
	if atk != nil {
		attackerIDs, identities = atk.ids(), atk.identities()
		atk.stop()
	}
	stopSite()
	prog.pause()

	honest := map[string]bool{}
	var errs []string
	for i, o := range res.outcomes {
		for _, id := range o.ids {
			honest[id] = true
		}
		ph.WrongBytes += o.wrong
		if o.churned {
			continue
		}
		if o.err != nil || !o.verified {
			errs = append(errs, fmt.Sprintf("peer %d: %v", i, o.err))
			continue
		}
		ph.Completed++
		ph.Seconds = append(ph.Seconds, o.seconds)
	}
	finishing := n - len(churnPlan(n, cfg.churn, cfg.randSeed))
	ph.CompletionRate = float64(ph.Completed) / float64(finishing)
	ph.MeanSeconds, ph.P50Seconds, ph.P95Seconds = timeStats(ph.Seconds)
	ph.OriginBytes = res.originBytes
	if delivered := int64(finishing) * cfg.size; delivered > 0 {
		ph.Offload = 1 - float64(res.originBytes)/float64(delivered)
	}
	if len(errs) > 0 {
		ph.Failure = strings.Join(errs, "; ")
	}
	events, err := coordinatorEvents(logFile.Name())
	if err != nil {
		return ph, nil, fmt.Errorf("reading the coordinator's log: %w", err)
	}
	side := func(id string) string {
		switch {
		case honest[id]:
			return "honest"
		case attackerIDs[id] != "":
			return attackerIDs[id]
		}
		return "unknown"
	}
	ph.Reports = map[string]int{}
	for _, e := range events {
		var tally map[string]int
		switch e.Msg {
		case "peer banned from swarm after reports":
			tally = r.AttackersBanned
			if side(e.Peer) == "honest" {
				ph.HonestBanned++
			}
		case "reporter lost its standing":
			tally = r.AttackersLost
			if side(e.Peer) == "honest" {
				ph.HonestLost++
			}
		case "peer reported":
			ph.Reports[fmt.Sprintf("%s %s→%s", e.Reason, side(e.From), side(e.Peer))]++
			continue
		default:
			continue
		}
		switch k := side(e.Peer); k {
		case "honest":
		case "unknown":
			r.UnknownIDs++
		default:
			tally[k]++
		}
	}
	return ph, identities, nil
}

func printAdversaryHeader(w io.Writer, cfg benchConfig) {
	fmt.Fprintf(w, "file %s, blocks %s, origin capped at %s/s, honest peers arriving over %s; attackers: %.0f%% of N as hosts (at least one per kind: %s)\n\n",
		humanize.IBytes(uint64(cfg.size)), humanize.IBytes(uint64(cfg.blockSize)), humanize.Bytes(uint64(cfg.originRate)), cfg.arrivals,
		cfg.adversaries*100, strings.Join(cfg.adversaryKinds, ", "))
}

func printAdversaryResult(w io.Writer, r adversaryResult) {
	var hosts []string
	for _, k := range adversaryKinds {
		if r.Hosts[k] > 0 {
			hosts = append(hosts, fmt.Sprintf("%s %d (%d ids)", k, r.Hosts[k], r.Identities[k]))
		}
	}
	fmt.Fprintf(w, "N=%d honest peers; attacking hosts: %s\n", r.Peers, strings.Join(hosts, ", "))
	row := func(name, free, attacked, goal string) {
		fmt.Fprintf(w, "  %-28s %-16s %-16s %s\n", name, free, attacked, goal)
	}
	f, a := r.AttackFree, r.Attacked
	row("", "attack-free", "under attack", "goal")
	row("honest downloads completed", fmt.Sprintf("%d (%.0f%%)", f.Completed, f.CompletionRate*100),
		fmt.Sprintf("%d (%.0f%%)", a.Completed, a.CompletionRate*100), "100%")
	row("wrong bytes written", fmt.Sprint(f.WrongBytes), fmt.Sprint(a.WrongBytes), "0")
	row("honest mean / p95", fmt.Sprintf("%.2f / %.2fs", f.MeanSeconds, f.P95Seconds),
		fmt.Sprintf("%.2f / %.2fs", a.MeanSeconds, a.P95Seconds), "")
	row("mean time ratio", "1", fmt.Sprintf("%.3f", r.TimeRatio), "≤ 1.5")
	row("offload", fmt.Sprintf("%.3f", f.Offload), fmt.Sprintf("%.3f", a.Offload), "")
	row("honest peers banned", fmt.Sprint(f.HonestBanned), fmt.Sprint(a.HonestBanned), "0")
	row("honest peers lost standing", fmt.Sprint(f.HonestLost), fmt.Sprint(a.HonestLost), "")
	var bans, lost []string
	for _, k := range adversaryKinds {
		if r.Identities[k] > 0 {
			bans = append(bans, fmt.Sprintf("%s %d/%d", k, r.AttackersBanned[k], r.Identities[k]))
			lost = append(lost, fmt.Sprintf("%s %d/%d", k, r.AttackersLost[k], r.Identities[k]))
		}
	}
	row("attackers banned", "", strings.Join(bans, ", "), "")
	row("attackers lost standing", "", strings.Join(lost, ", "), "")
	if r.UnknownIDs > 0 {
		row("bans etc. of unknown ids", "", fmt.Sprint(r.UnknownIDs), "")
	}
	row("goals met", "", fmt.Sprint(r.GoalsMet), "")
	for _, ph := range []adversaryPhase{f, a} {
		keys := slices.Sorted(maps.Keys(ph.Reports))
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, ph.Reports[k]))
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "  reports (reason reporter→reported): %s\n", strings.Join(parts, ", "))
		}
		if ph.Failure != "" {
			fmt.Fprintf(w, "  FAILED: %s\n", ph.Failure)
		}
	}
	fmt.Fprintln(w)
}

// adversaryKindList checks --adversary-kinds.
func adversaryKindList(raw []string) ([]string, error) {
	var out []string
	for _, r := range raw {
		k := strings.TrimSpace(r)
		if !slices.Contains(adversaryKinds, k) {
			return nil, usageError{fmt.Errorf("--adversary-kinds %q: want some of %s", k, strings.Join(adversaryKinds, ","))}
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Errorf("--adversary-kinds: name at least one of %s", strings.Join(adversaryKinds, ","))}
	}
	return out, nil
}
