package p2pxhr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/p2pxhr/p2pxhr/internal/cli"
	"github.com/p2pxhr/p2pxhr/peer"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "seed",
		Usage: "<url>... [--from <file>]... [--prefix </_p2pxhr/>] [--ice-server <url>]...",
		Short: "Serves files of a P2PXHR site to its visitors until interrupted",
		Long: `
Joins the swarm of each <url> and serves its blocks to the site's other
visitors over WebRTC until interrupted (SIGINT or SIGTERM), showing the
bytes uploaded.

--from gives a local copy of the file to serve, once per URL in the same
order. Each is checked against the site's manifest before seeding starts;
a file that differs is an error naming its first bad block. A URL without
--from is downloaded first (with P2P help) into a temporary file.

Exit status: 0 stopped by a signal, 1 a URL could not be seeded (server,
network, mismatching file), 2 bad arguments or URL.`,
		CobraFunc: func(cmd *cobra.Command) {
			seedFlags(cmd.Flags())
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSeed)
		},
	})
}

// seedFlags defines seed's flags (tests build the same set).
func seedFlags(fs *pflag.FlagSet) {
	fs.StringArray("from", nil, "local copy of the file to serve, once per URL in order")
	addPeerFlags(fs)
}

func cmdSeed(fl caddycmd.Flags) (int, error) {
	ctx, stop := cli.SignalContext()
	defer stop()
	return runSeed(ctx, fl.FlagSet, os.Stdout, os.Stderr)
}

// runSeed is the seed command; it returns when ctx ends.
func runSeed(ctx context.Context, fs *pflag.FlagSet, stdout, stderr io.Writer) (int, error) {
	err := seed(ctx, fs, stdout, stderr)
	return cli.ExitCode(err), err
}

// seedJob is one URL to seed and its local copy, if any.
type seedJob struct {
	u    *url.URL
	from *os.File
}

func seed(ctx context.Context, fs *pflag.FlagSet, stdout, stderr io.Writer) error {
	froms, _ := fs.GetStringArray("from")
	if fs.NArg() == 0 {
		return cli.Usage(errors.New("usage: p2pxhr seed <url>... [--from <file>]... [--prefix </_p2pxhr/>] [--ice-server <url>]..."))
	}
	if len(froms) > 0 && len(froms) != fs.NArg() {
		return cli.Usage(fmt.Errorf("%d --from files for %d URLs: give one per URL, in order", len(froms), fs.NArg()))
	}
	jobs := make([]seedJob, fs.NArg())
	defer func() {
		for _, j := range jobs {
			if j.from != nil {
				j.from.Close()
			}
		}
	}()
	for i, arg := range fs.Args() {
		u, err := parseResourceURL(arg)
		if err != nil {
			return err
		}
		jobs[i].u = u
	}
	// Every local copy is verified before anything is served, so a wrong
	// file fails at once rather than serving a fraction of itself.
	for i := range froms {
		f, err := openVerified(ctx, froms[i], jobs[i].u, prefixFlag(fs))
		if err != nil {
			return err
		}
		jobs[i].from = f
	}

	prog := newProgressLine(stderr)
	defer prog.finish()
	clients := map[string]*peer.Client{} // one per site: one coordinator connection each
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	start := time.Now()
	for i, j := range jobs {
		site := j.u.Scheme + "://" + j.u.Host
		c := clients[site]
		if c == nil {
			var err error
			if c, err = newPeerClient(j.u, fs, prog.logf, nil); err != nil {
				return err
			}
			clients[site] = c
		}
		if j.from == nil {
			prog.logf("%s: downloading it first", j.u)
		}
		prog.logf("seeding %s", j.u)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var from io.ReaderAt
			if j.from != nil {
				from = j.from
			}
			if err := c.Seed(ctx, j.u.String(), from); err != nil && ctx.Err() == nil {
				errs[i] = fmt.Errorf("%s: %w", j.u, explain(err, j.u))
				prog.logf("cannot seed %v", errs[i])
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	uploaded := func() int64 {
		var n int64
		for _, c := range clients {
			n += c.Uploaded()
		}
		return n
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false // every seed ended: by ctx, or all failed
		case <-tick.C:
			prog.update(func(s *status) { s.Seeding, s.Uploaded = true, uploaded() })
		}
	}
	prog.finish()
	fmt.Fprintf(stdout, "uploaded %s in %s\n", cli.FormatBytes(uploaded()), time.Since(start).Round(time.Second))
	return errors.Join(errs...)
}

// openVerified opens path and checks it against the manifest of u.
func openVerified(ctx context.Context, path string, u *url.URL, prefix string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := peer.FetchManifest(ctx, http.DefaultClient, u.String(), prefix)
	if err == nil {
		err = peer.CheckContent(m, f)
		if err != nil {
			err = fmt.Errorf("%s does not match %s: %w", path, u, err)
		}
	} else {
		var me *peer.ManifestError
		if errors.As(err, &me) && me.Reason != "" {
			err = fmt.Errorf("%s cannot be seeded: %s", u, me.Reason)
		}
		err = explain(err, u)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
