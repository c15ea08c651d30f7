package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Bounds of a bench run: it must stop by itself and stay on one machine.
const (
	maxBenchPeers = 64
	// maxBenchBrowsers bounds --browsers: each is a Chromium process.
	maxBenchBrowsers = 16
	maxBenchSize     = 1 << 30
	// maxBenchMemory caps peers × size: every P2P peer holds its copy in
	// memory (it serves from it), so a sweep cannot exhaust the host.
	maxBenchMemory = 6 << 30
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "bench",
		Usage: "[--peers 2,5,10,20] [--size 64MiB] [--origin-rate 8MB/s] [--arrivals 5s] [--churn 0.3] [--adversaries 20%] [--json] [--plot out.svg]",
		Short: "Measures a swarm of Go peers against HTTP only, on loopback",
		Long: `
Starts the p2pxhr module in-process on 127.0.0.1 in front of generated
content (/files/demo.bin of --size bytes) with its origin capped at
--origin-rate, then for each --peers value N:

  1. N Go peers download the file over HTTP ranges and WebRTC together,
     arriving at once or evenly over --arrivals;
  2. on a fresh server, the same N downloads as plain HTTP GETs.

Offload is counted at the module (bytes the origin really served during
the P2P phase): offload = 1 - origin / bytes delivered, at most (N-1)/N.
Every peer's copy is hashed against the origin's SHA-256.

--churn F makes that fraction of peers cancel at a random point of their
download; they do not count for completion times. With --seed-after=false
peers leave as soon as they finish, instead of seeding until all are done.

--adversaries F (a fraction or a percentage) adds attacking hosts: round(F×N),
at least one per kind named in --adversary-kinds, kinds in turn. Each host
connects from a network of its own; honest peers each from theirs.
  lie      seeds the file with every block corrupted
  reject   claims every block and declines every request (busy)
  silent   claims every block and ignores every request
  slow     seeds the right bytes at 64 KiB/s
  sybil    3 peers that hold nothing and report every neighbour bad-block
  eclipse  12 WebSocket-only joiners that never signal
The attackers join first; then the honest swarm runs as usual, and the same
swarm runs again on a fresh site without them (no HTTP-only phase). The
report gives both: completions, wrong bytes written (compared with the
origin's, byte by byte), mean times and their ratio, offload, and the peers
the coordinator banned (attackers per kind, honest ones), against issue 14's
goals: 100% completion, 0 wrong bytes, 0 honest peers banned, time at most
1.5× the attack-free swarm's.

Output: a table on stdout (progress on stderr), or with --json one JSON
object per --peers value, one per line. --plot writes an SVG of the
completion-time distributions (and offload against N for a sweep).

--visits N runs another scenario instead (bench_visits.go): N visitors
arrive --every apart (default 30s), so downloads rarely overlap; each
stays on the site --stay (default 5m) after its download, seeding from
its cache (--persist on) or not at all (off); both by default, each on a
fresh site. Offload is counted at the module as above.

Exit status: 0 done (goals are reported, not enforced), 1 the run failed
(a download failed or a copy did not verify), 2 bad flags.`,
		CobraFunc: func(cmd *cobra.Command) {
			benchFlags(cmd.Flags())
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdBench)
		},
	})
}

// benchFlags defines bench's flags (tests build the same set).
func benchFlags(fs *pflag.FlagSet) {
	fs.StringSlice("peers", []string{"10"}, "number of peers; repeat or give a comma list for a sweep (1.."+strconv.Itoa(maxBenchPeers)+")")
	fs.StringSlice("browsers", nil, "visitors are this many headless Chromium processes instead of Go peers; a comma list for a sweep (1.."+strconv.Itoa(maxBenchBrowsers)+")")
	fs.String("chromium", "/usr/bin/chromium", "the Chromium executable for --browsers and --from-seeder")
	fs.Bool("from-seeder", false, "measure one visitor alone against one Go seeder: a Go peer, then a Chromium tab (throughput and the tab's memory)")
	fs.String("size", "64MiB", "size of the file every peer downloads")
	fs.String("block-size", "256KiB", "the module's block_size (16KiB..4MiB)")
	fs.String("origin-rate", "8MB/s", "the module's http_rate_limit: the origin's shared bandwidth")
	fs.String("offload", "", "the module's offload policy (off, always, <rate>/s, in_flight <n>); default: the rate limit's pressure")
	fs.Duration("arrivals", 5*time.Second, "peers start evenly over this window (0: all at once)")
	fs.Bool("poisson", false, "peers arrive as a Poisson process over --arrivals instead of evenly (seeded by --rand-seed)")
	fs.Int("busy", 0, "keep this many cores busy with other processes during the run, as a loaded visitor machine")
	fs.Bool("seed-after", true, "peers keep seeding after completing until all are done (false: they leave)")
	fs.Float64("churn", 0, "fraction of peers that cancel their download at a random point (0..0.9)")
	fs.Bool("json", false, "print one JSON object per --peers value instead of a table")
	fs.String("plot", "", "write completion-time CDFs (and offload against N) to this SVG file")
	fs.Duration("timeout", 10*time.Minute, "bound on the whole run")
	fs.String("adversaries", "0", "attacking hosts as a fraction of --peers (0.2 or 20%), at least one per kind")
	fs.StringSlice("adversary-kinds", adversaryKinds, "attacks to mount: "+strings.Join(adversaryKinds, ","))
	fs.Int64("rand-seed", 1, "seed of the churn choices, for repeatable runs")
	// For explaining a missed goal with evidence, not for everyday use.
	fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	_ = fs.MarkHidden("cpuprofile")
	fs.Bool("no-http", false, "skip the HTTP-only phase: offload, P2P times and the swarm floor only")
	_ = fs.MarkHidden("rand-seed")
	visitFlags(fs)
}

// benchConfig is bench's flags, checked.
type benchConfig struct {
	peers      []int
	browsers   bool // the peers are Chromium processes
	chromium   string
	fromSeeder bool
	size       int64
	blockSize  int64
	originRate int64
	offload    string
	arrivals   time.Duration
	poisson    bool
	busy       int
	seedAfter  bool
	churn      float64
	json       bool
	plot       string
	timeout    time.Duration
	randSeed   int64
	cpuprofile string
	visits     visitConfig
	// adversaries > 0 runs the attack comparison instead (bench_adversary.go).
	adversaries    float64
	adversaryKinds []string
	// coordinatorLog, if set, is where the bench site writes its
	// coordinator's log (JSON lines), for telling who was banned.
	coordinatorLog string
	skipHTTP       bool
}

func cmdBench(fl caddycmd.Flags) (int, error) {
	ctx, stop := signalContext()
	defer stop()
	return runBench(ctx, fl.FlagSet, os.Stdout, os.Stderr)
}

// runBench is the bench command: results to stdout, progress to stderr.
func runBench(ctx context.Context, fs *pflag.FlagSet, stdout, stderr io.Writer) (int, error) {
	cfg, err := parseBenchFlags(fs)
	if err != nil {
		return exitCode(err), err
	}
	err = bench(ctx, cfg, stdout, stderr)
	return exitCode(err), err
}

func parseBenchFlags(fs *pflag.FlagSet) (benchConfig, error) {
	var cfg benchConfig
	if fs.NArg() != 0 {
		return cfg, usageError{fmt.Errorf("bench takes no arguments, got %q", fs.Args())}
	}
	flag, most := "peers", maxBenchPeers
	raw, _ := fs.GetStringSlice("peers")
	if b, _ := fs.GetStringSlice("browsers"); len(b) > 0 {
		if fs.Changed("peers") {
			return cfg, usageError{fmt.Errorf("--browsers and --peers both name the visitors; give one")}
		}
		cfg.browsers, raw, flag, most = true, b, "browsers", maxBenchBrowsers
	}
	cfg.chromium, _ = fs.GetString("chromium")
	cfg.fromSeeder, _ = fs.GetBool("from-seeder")
	if cfg.fromSeeder && (fs.Changed("peers") || cfg.browsers) {
		return cfg, usageError{fmt.Errorf("--from-seeder runs one Go peer and one browser tab; it takes no --peers or --browsers")}
	}
	if cfg.fromSeeder {
		raw = []string{"1"}
	}
	for _, r := range raw {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 || n > most {
			return cfg, usageError{fmt.Errorf("--%s %q: want whole numbers from 1 to %d", flag, r, most)}
		}
		if !slices.Contains(cfg.peers, n) {
			cfg.peers = append(cfg.peers, n)
		}
	}
	slices.Sort(cfg.peers)
	var err error
	if cfg.size, err = sizeFlag(fs, "size", 1, maxBenchSize); err != nil {
		return cfg, err
	}
	if cfg.blockSize, err = sizeFlag(fs, "block-size", 16<<10, 4<<20); err != nil {
		return cfg, err
	}
	if cfg.originRate, err = sizeFlag(fs, "origin-rate", 1<<10, 1<<40); err != nil {
		return cfg, err
	}
	if top := int64(cfg.peers[len(cfg.peers)-1]); top*cfg.size > maxBenchMemory {
		return cfg, usageError{fmt.Errorf("--%s %d × --size %s is over the %s the bench may hold in memory",
			flag, top, humanize.IBytes(uint64(cfg.size)), humanize.IBytes(maxBenchMemory))}
	}
	cfg.offload, _ = fs.GetString("offload")
	if err := checkOffloadFlag(cfg.offload); err != nil {
		return cfg, err
	}
	cfg.arrivals, _ = fs.GetDuration("arrivals")
	cfg.poisson, _ = fs.GetBool("poisson")
	cfg.busy, _ = fs.GetInt("busy")
	if cfg.busy < 0 || cfg.busy > 64 {
		return cfg, usageError{fmt.Errorf("--busy %d: want 0 to 64 busy processes", cfg.busy)}
	}
	cfg.seedAfter, _ = fs.GetBool("seed-after")
	cfg.churn, _ = fs.GetFloat64("churn")
	cfg.json, _ = fs.GetBool("json")
	cfg.plot, _ = fs.GetString("plot")
	cfg.timeout, _ = fs.GetDuration("timeout")
	cfg.randSeed, _ = fs.GetInt64("rand-seed")
	cfg.cpuprofile, _ = fs.GetString("cpuprofile")
	if err := parseVisitFlags(fs, &cfg); err != nil {
		return cfg, err
	}
	cfg.skipHTTP, _ = fs.GetBool("no-http")
	adv, _ := fs.GetString("adversaries")
	frac, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(adv), "%"), 64)
	if strings.HasSuffix(strings.TrimSpace(adv), "%") {
		frac /= 100
	}
	if err != nil || frac < 0 || frac > 1 || frac != frac {
		return cfg, usageError{fmt.Errorf("--adversaries %q: want a fraction from 0 to 1 or a percentage, such as 0.2 or 20%%", adv)}
	}
	cfg.adversaries = frac
	kinds, _ := fs.GetStringSlice("adversary-kinds")
	if cfg.adversaryKinds, err = adversaryKindList(kinds); err != nil {
		return cfg, err
	}
	if cfg.adversaries > 0 && cfg.plot != "" {
		return cfg, usageError{fmt.Errorf("--plot is not drawn with --adversaries")}
	}
	if cfg.adversaries > 0 && cfg.visits.n > 0 {
		return cfg, usageError{fmt.Errorf("--adversaries and --visits are separate benchmarks: give one")}
	}
	if (cfg.browsers || cfg.fromSeeder) && (cfg.adversaries > 0 || cfg.visits.n > 0) {
		return cfg, usageError{fmt.Errorf("--browsers and --from-seeder run Go or browser visitors alone; --adversaries and --visits are separate benchmarks")}
	}
	switch {
	case cfg.arrivals < 0 || cfg.arrivals > time.Hour:
		return cfg, usageError{fmt.Errorf("--arrivals %s: want a duration from 0 to 1h", cfg.arrivals)}
	case cfg.churn < 0 || cfg.churn > 0.9 || cfg.churn != cfg.churn:
		return cfg, usageError{fmt.Errorf("--churn %v: want a fraction from 0 to 0.9 (someone must finish)", cfg.churn)}
	case cfg.timeout <= 0:
		return cfg, usageError{fmt.Errorf("--timeout %s: want a positive duration", cfg.timeout)}
	}
	// Last: a usage error is reported even where Chromium is missing.
	if cfg.browsers || cfg.fromSeeder {
		if _, err := os.Stat(cfg.chromium); err != nil {
			return cfg, fmt.Errorf("--chromium: %w (install Debian's chromium, or name the executable)", err)
		}
	}
	return cfg, nil
}

// checkOffloadFlag refuses what the Caddyfile would, before any phase runs.
func checkOffloadFlag(policy string) error {
	if policy == "" {
		return nil
	}
	f := strings.Fields(policy)
	ok := len(f) == 1 && (f[0] == "off" || f[0] == "always")
	if len(f) == 1 && !ok {
		_, err := humanize.ParseBytes(strings.TrimSuffix(f[0], "/s"))
		ok = err == nil
	}
	if len(f) == 2 && f[0] == "in_flight" {
		n, err := strconv.Atoi(f[1])
		ok = err == nil && n > 0
	}
	if !ok {
		return usageError{fmt.Errorf("--offload %q: want off, always, a rate such as 6MB/s, or \"in_flight <n>\"", policy)}
	}
	return nil
}

// sizeFlag parses a byte size such as 64MiB or 8MB/s within [lo, hi].
func sizeFlag(fs *pflag.FlagSet, name string, lo, hi int64) (int64, error) {
	raw, _ := fs.GetString(name)
	n, err := humanize.ParseBytes(strings.TrimSuffix(raw, "/s"))
	if err != nil || int64(n) < lo || int64(n) > hi || n > 1<<50 {
		return 0, usageError{fmt.Errorf("--%s %q: want a size from %s to %s, such as 64MiB or 8MB/s",
			name, raw, humanize.IBytes(uint64(lo)), humanize.IBytes(uint64(hi)))}
	}
	return int64(n), nil
}

// bench runs every --peers value in turn, then prints and plots.
func bench(ctx context.Context, cfg benchConfig, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	raiseFileLimit()
	if cfg.busy > 0 {
		stopBusy, err := startBusy(ctx, cfg.busy)
		if err != nil {
			return fmt.Errorf("--busy: %w", err)
		}
		defer stopBusy()
	}
	if cfg.fromSeeder {
		return benchFromSeeder(ctx, cfg, stdout, stderr)
	}
	if cfg.visits.n > 0 {
		return benchVisits(ctx, cfg, stdout, stderr)
	}
	prog := newBenchProgress(stderr)
	defer prog.finish()
	if cfg.adversaries > 0 {
		return benchAttacked(ctx, cfg, stdout, prog)
	}
	if !cfg.json {
		printBenchHeader(stdout, cfg)
	}
	var results []benchResult
	var failed error
	for _, n := range cfg.peers {
		res, err := benchOne(ctx, cfg, n, prog)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return fmt.Errorf("bench N=%d: %w (--timeout %s)", n, err, cfg.timeout)
			}
			return fmt.Errorf("bench N=%d: %w", n, err)
		}
		results = append(results, res)
		prog.pause()
		if cfg.json {
			if err := printBenchJSON(stdout, res); err != nil {
				return err
			}
		} else {
			printBenchRow(stdout, res)
		}
		if !res.Verified && failed == nil {
			failed = fmt.Errorf("bench N=%d: %s", n, res.Failure)
		}
	}
	prog.finish()
	if !cfg.json {
		printBenchNotes(stdout)
	}
	if cfg.plot != "" {
		if err := writeBenchPlot(cfg.plot, cfg, results); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	return failed
}

// benchAttacked runs the attack comparison for every --peers value.
func benchAttacked(ctx context.Context, cfg benchConfig, stdout io.Writer, prog *benchProgress) error {
	if !cfg.json {
		printAdversaryHeader(stdout, cfg)
	}
	var failed error
	for _, n := range cfg.peers {
		res, err := benchAdversaries(ctx, cfg, n, prog)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return fmt.Errorf("bench N=%d: %w (--timeout %s)", n, err, cfg.timeout)
			}
			return fmt.Errorf("bench N=%d: %w", n, err)
		}
		prog.pause()
		if cfg.json {
			b, err := json.Marshal(res)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			printAdversaryResult(stdout, res)
		}
		if failed == nil && (res.Attacked.Failure != "" || res.AttackFree.Failure != "" || res.Attacked.WrongBytes > 0) {
			failed = fmt.Errorf("bench N=%d: a download failed or wrong bytes were written", n)
		}
	}
	prog.finish()
	return failed
}
