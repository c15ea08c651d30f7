package p2pxhr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/p2pxhr/p2pxhr/internal/cli"
	"github.com/p2pxhr/p2pxhr/peer"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "get",
		Usage: "<url> [-o <file>] [--prefix </_p2pxhr/>] [--ice-server <url>]...",
		Short: "Downloads a file from a P2PXHR site with help from its other visitors",
		Long: `
Downloads <url> by HTTP range requests and, at the same time, from the other
peers of its swarm over WebRTC, verifying every block against the manifest
the site's p2pxhr module publishes. The file is written under a temporary
name in the target directory and renamed when whole and verified.

If the site's coordinator cannot be reached the download goes on over HTTP
alone. If the resource is not shareable (the manifest route refuses it),
it is downloaded over plain HTTP and the reason is shown.

On a loopback URL (localhost, 127.0.0.1, ::1) peers meet over loopback.
Elsewhere peers behind NATs meet through the STUN (and TURN) servers the
site's coordinator names, its own embedded STUN server by default; any
--ice-server is used after those.

Exit status: 0 done, 1 download failed (server, network, disk), 2 bad
arguments or URL.`,
		CobraFunc: func(cmd *cobra.Command) {
			getFlags(cmd.Flags())
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdGet)
		},
	})
}

// getFlags defines get's flags (tests build the same set).
func getFlags(fs *pflag.FlagSet) {
	fs.StringP("output", "o", "", "file to write (default: the URL's base name in the current directory)")
	addPeerFlags(fs)
}

func cmdGet(fl caddycmd.Flags) (int, error) {
	ctx, stop := cli.SignalContext()
	defer stop()
	return runGet(ctx, fl.FlagSet, os.Stdout, os.Stderr)
}

// runGet is the get command: progress and notices go to stderr, the
// summary to stdout.
func runGet(ctx context.Context, fs *pflag.FlagSet, stdout, stderr io.Writer) (int, error) {
	err := get(ctx, fs, stdout, stderr)
	return cli.ExitCode(err), err
}

func get(ctx context.Context, fs *pflag.FlagSet, stdout, stderr io.Writer) error {
	if fs.NArg() != 1 {
		return cli.Usage(errors.New("usage: p2pxhr get <url> [-o <file>] [--prefix </_p2pxhr/>] [--ice-server <url>]..."))
	}
	u, err := parseResourceURL(fs.Arg(0))
	if err != nil {
		return err
	}
	out, err := outputPath(fs, u)
	if err != nil {
		return err
	}
	prog := newProgressLine(stderr)
	defer prog.finish()
	c, err := newPeerClient(u, fs, prog.logf, func(p peer.Progress) {
		prog.update(func(s *status) {
			s.Loaded, s.Total, s.FromHTTP, s.FromPeers = p.Loaded, p.Total, p.FromHTTP, p.FromPeers
		})
	})
	if err != nil {
		return err
	}
	defer c.Close()

	// A temporary name in the target directory: the rename at the end is
	// atomic, so the final name never holds half a file.
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	start := time.Now()
	res, err := c.Download(ctx, u.String(), f)
	var me *peer.ManifestError
	if errors.As(err, &me) && res.BytesFromHTTP+res.BytesFromPeers == 0 {
		// The site will not share it, but the user still wants the file.
		reason := me.Reason
		if reason == "" {
			reason = fmt.Sprintf("manifest route answered HTTP %d", me.Status)
		}
		prog.logf("%s is not shareable (%s): downloading it over plain HTTP", u, reason)
		res, err = plainGet(ctx, u, f, prog)
	}
	if err != nil {
		if errors.Is(err, peer.ErrWrite) {
			return fmt.Errorf("cannot write %s: %w", out, err)
		}
		return explain(err, u)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	// CreateTemp makes the file private; a download is an ordinary file.
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("cannot write %s: %w", out, err)
	}
	committed = true
	prog.finish() // before the summary, so no progress line follows it
	total := res.BytesFromHTTP + res.BytesFromPeers
	fmt.Fprintf(stdout, "saved %s (%s) in %s\n", out, cli.FormatBytes(res.Size), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  from HTTP:  %s (%d%%)\n", cli.FormatBytes(res.BytesFromHTTP), percent(res.BytesFromHTTP, total))
	fmt.Fprintf(stdout, "  from peers: %s (%d%%), %d peers used\n", cli.FormatBytes(res.BytesFromPeers), percent(res.BytesFromPeers, total), res.PeersUsed)
	if res.Restarts > 0 {
		fmt.Fprintf(stdout, "  restarted %d time(s): the file changed at the origin during the download\n", res.Restarts)
	}
	return nil
}

// outputPath is -o, or the URL's base name in the current directory; an
// existing directory given to -o receives the base name.
func outputPath(fs *pflag.FlagSet, u *url.URL) (string, error) {
	out, _ := fs.GetString("output")
	base := path.Base(u.Path)
	if base == "/" || base == "." || base == "" {
		base = ""
	}
	if out != "" {
		if fi, err := os.Stat(out); err == nil && fi.IsDir() {
			if base == "" {
				return "", cli.Usage(fmt.Errorf("%s names no file; give -o a file name", u))
			}
			return filepath.Join(out, base), nil
		}
		return out, nil
	}
	if base == "" {
		return "", cli.Usage(fmt.Errorf("%s names no file; use -o <file>", u))
	}
	return base, nil
}

// plainGet downloads u into f with one plain GET, for resources the site
// does not share.
func plainGet(ctx context.Context, u *url.URL, f *os.File, prog *progressLine) (peer.Result, error) {
	start := time.Now()
	var res peer.Result
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return res, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := f.Truncate(0); err != nil {
		return res, fmt.Errorf("%w: %w", peer.ErrWrite, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, fmt.Errorf("%w: %w", peer.ErrWrite, err)
	}
	w := &countingWriter{w: f, onWrite: func(n int64) {
		prog.update(func(s *status) { s.Loaded, s.FromHTTP, s.Total = n, n, resp.ContentLength })
	}}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if w.err != nil {
			return res, fmt.Errorf("%w: %w", peer.ErrWrite, w.err)
		}
		return res, err
	}
	res.Size, res.BytesFromHTTP, res.Duration = w.n, w.n, time.Since(start)
	return res, nil
}

// countingWriter counts bytes and keeps the write error apart from read
// errors, so a full disk is reported as such.
type countingWriter struct {
	w       io.Writer
	n       int64
	err     error
	onWrite func(n int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	c.onWrite(c.n)
	return n, err
}
