// Package cli holds what the p2pxhr commands share: exit statuses, the
// error that means "bad arguments", the signal context, and the pieces of
// their progress output. The get and seed commands (module root) and bench
// (cmd/p2pxhr) use it; it never imports Caddy.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"
)

// Exit statuses of the commands (README "Command line").
const (
	ExitOK      = 0
	ExitFailure = 1 // the server, the network, the content or the disk failed
	ExitUsage   = 2 // bad flags or URL: retrying will not help
)

// Usage marks err as a usage error: bad flags or arguments, which exit
// with ExitUsage.
func Usage(err error) error { return usageError{err} }

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// ExitCode maps an error to the command's exit status.
func ExitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	}
	return ExitFailure
}

// SignalContext ends on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// IsTerminal reports whether w is a terminal, where progress redraws one
// line instead of printing a line per second.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// TickUntil calls fn every interval until stop is closed.
func TickUntil(stop <-chan struct{}, every time.Duration, fn func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// FormatBytes prints n in binary units, the way sizes are configured.
func FormatBytes(n int64) string {
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
