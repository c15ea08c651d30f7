package main

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The conditions a bench runs under, recorded beside its figures: how
// visitors arrive, what else keeps the machine busy, its load average.

// arrivalAt is visitor i's arrival, from the start of a phase: spread
// evenly over --arrivals, or with --poisson as a Poisson process with n
// arrivals in that window (n uniform times, sorted; seeded, so both phases
// and repeated runs see the same arrivals).
func (cfg benchConfig) arrivalAt(i, n int) time.Duration {
	if !cfg.poisson || n <= 1 {
		return arrivalOffset(i, n, cfg.arrivals)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.randSeed), uint64(n)<<32|0x9e3779b9))
	at := make([]time.Duration, n)
	for k := range at {
		at[k] = time.Duration(rng.Int64N(int64(cfg.arrivals) + 1))
	}
	slices.Sort(at)
	return at[i]
}

// loadAverage is the machine's 1-minute load average (0 where unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// startBusy starts n processes that each keep one core busy (a shell
// loop, nothing to do with the bench), as a visitor's machine running
// something else would; the returned function stops them.
func startBusy(ctx context.Context, n int) (stop func(), err error) {
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			_ = c.Wait()
		}
	}
	for range n {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", "while :; do :; done")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

// probeSwarm measures d, what one peer downloads per second from a swarm
// that has the whole file, for the swarm floor max(F/C_origin, F/d): one
// more Go peer downloads while the finished peers still seed (--seed-after)
// and the origin is as loaded as in the phase. It returns its seconds, or
// 0 when it did not run or failed (the floor then rests on the origin).
func probeSwarm(ctx context.Context, site *benchSite, cfg benchConfig, want [sha256.Size]byte) float64 {
	if !cfg.seedAfter || ctx.Err() != nil {
		return 0
	}
	o, err := goDownload(ctx, site, cfg, want)
	if err != nil {
		return 0
	}
	return o.seconds
}
