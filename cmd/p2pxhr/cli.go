package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/p2pxhr/p2pxhr/internal/cli"
)

// bench shares its command plumbing with get and seed (internal/cli);
// these short names keep its code as it reads elsewhere.

const exitUsage = cli.ExitUsage

// usageError marks bench's bad flags (exit status 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// plainInterval is how often bench's progress prints when the output is
// not a terminal (tests shorten it).
var plainInterval = time.Second

func exitCode(err error) int {
	if errors.As(err, new(usageError)) {
		return cli.ExitUsage
	}
	return cli.ExitCode(err)
}

func signalContext() (context.Context, context.CancelFunc) { return cli.SignalContext() }

func isTerminal(w io.Writer) bool { return cli.IsTerminal(w) }

func tickUntil(stop <-chan struct{}, every time.Duration, fn func()) {
	cli.TickUntil(stop, every, fn)
}

func formatBytes(n int64) string { return cli.FormatBytes(n) }
