package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// DefaultPrefix is the Caddy module's default route prefix.
const DefaultPrefix = "/_p2pxhr/"

// maxRestarts bounds how often one Download restarts on a changed origin.
const maxRestarts = 3

// ErrAlreadyInSwarm is returned by Download or Seed for a resource version
// this Client is already downloading or seeding: one membership per swarm.
var ErrAlreadyInSwarm = errors.New("peer: already in swarm")

// Options configure a Client; zero fields take defaults.
type Options struct {
	// Signaller meets other peers; nil downloads over HTTP only and seeds
	// to no one. The Client owns it and closes it in Close.
	Signaller Signaller
	// RTC sets ICE servers and loopback mode.
	RTC RTCConfig
	// HTTPClient fetches manifests and ranges (default http.DefaultClient).
	HTTPClient *http.Client
	// Prefix is the module's route prefix at the origin (DefaultPrefix).
	Prefix string
	// MaxPeers bounds connections per swarm (default 8). A link beyond it
	// is declined (reported "full") unless a connection that never opened
	// can make room.
	MaxPeers int
	// ConnectTimeout is how long a link may take to open its channel
	// before it is reported "unreachable" and freed (default 15s); a peer
	// we are to answer must send its offer within a third of it.
	ConnectTimeout time.Duration
	// HTTPConcurrency is the number of parallel range requests (default 2).
	HTTPConcurrency int
	// Scheduler tunes block scheduling.
	Scheduler SchedulerConfig
	// StatsInterval is how often each swarm's running totals are handed to
	// the signaller (default 2s); the signaller decides how often to send.
	StatsInterval time.Duration
	// Progress, if set, is called after each new verified block, from the
	// goroutine that stored it; it must be quick.
	Progress func(Progress)
	// OnConnection, if set, is told how each connection attempt this
	// Client offered ended (the signaller, if a ConnectionReporter, is
	// told too); from pion's goroutines, so it must be quick.
	OnConnection func(ConnectionOutcome)

	hooks *testHooks
}

// Progress is a download's state after a block.
type Progress struct {
	Loaded, Total       int64 // bytes verified so far / resource size
	FromHTTP, FromPeers int64
}

// Result sums up a download. Bytes count verified blocks stored, over all
// attempts if the origin changed mid-way.
type Result struct {
	Size           int64
	BytesFromHTTP  int64
	BytesFromPeers int64
	PeersUsed      int
	Restarts       int
	Duration       time.Duration
}

// Client downloads and seeds resources through one signaller and one ICE
// socket. Its methods are safe for concurrent use.
type Client struct {
	opts     Options
	sig      Signaller
	rtc      *rtcStack
	uploaded atomic.Int64

	mu     sync.Mutex
	swarms map[string]*swarm
	loaded bool
	closed bool

	stop chan struct{}
	wg   goroutines // conn goroutines and the dispatcher
}

// New returns a Client; Close releases it.
func New(opts Options) (*Client, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxPeers <= 0 {
		opts.MaxPeers = 8
	}
	if opts.HTTPConcurrency <= 0 {
		opts.HTTPConcurrency = 2
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 15 * time.Second
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 2 * time.Second
	}
	c := &Client{opts: opts, sig: opts.Signaller, swarms: map[string]*swarm{}, stop: make(chan struct{})}
	if c.sig != nil {
		rtc, err := newRTCStack(opts.RTC)
		if err != nil {
			return nil, err
		}
		c.rtc = rtc
		c.wg.Go(c.dispatch)
	}
	return c, nil
}

// siteICEServers are the ICE servers the signaller learnt from the site.
func (c *Client) siteICEServers() []webrtc.ICEServer {
	if src, ok := c.sig.(ICEServerSource); ok {
		return src.ICEServers()
	}
	return nil
}

// connectionOutcome passes an attempt's outcome to the signaller and the
// OnConnection hook.
func (c *Client) connectionOutcome(o ConnectionOutcome) {
	if r, ok := c.sig.(ConnectionReporter); ok {
		r.ReportConnection(o)
	}
	if c.opts.OnConnection != nil {
		c.opts.OnConnection(o)
	}
}

// Uploaded returns the bytes this Client has sent to peers.
func (c *Client) Uploaded() int64 { return c.uploaded.Load() }

// dispatch routes the signaller's events to swarms.
func (c *Client) dispatch() {
	neigh, sigs, loaded := c.sig.Neighbours(), c.sig.Signals(), c.sig.Loaded()
	var assigns <-chan Assignment
	if a, ok := c.sig.(HTTPAssigner); ok {
		assigns = a.Assignments()
	}
	stats := time.NewTicker(c.opts.StatsInterval)
	defer stats.Stop()
	for neigh != nil || sigs != nil || loaded != nil {
		select {
		case <-c.stop:
			return
		case <-stats.C:
			c.mu.Lock()
			swarms := make([]*swarm, 0, len(c.swarms))
			for _, s := range c.swarms {
				swarms = append(swarms, s)
			}
			c.mu.Unlock()
			for _, s := range swarms {
				c.sig.Stats(s.id, s.stats())
			}
		case in, ok := <-neigh:
			if !ok {
				neigh = nil
			} else if s := c.swarm(in.Swarm); s != nil {
				s.introduce(in)
			}
		case sg, ok := <-sigs:
			if !ok {
				sigs = nil
			} else if s := c.swarm(sg.Swarm); s != nil {
				s.signal(sg)
			}
		case a, ok := <-assigns:
			if !ok {
				assigns = nil
			} else if s := c.swarm(a.Swarm); s != nil {
				s.assigned(a.Blocks)
			}
		case v, ok := <-loaded:
			if !ok {
				loaded = nil
				continue
			}
			c.mu.Lock()
			c.loaded = v
			var dls []*download
			for _, s := range c.swarms {
				if s.dl != nil {
					dls = append(dls, s.dl)
				}
			}
			c.mu.Unlock()
			for _, d := range dls {
				d.setLoaded(v)
			}
		}
	}
}

func (c *Client) swarm(id string) *swarm {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.swarms[id]
}

// join registers s and enters its swarm at the signaller; the returned
// func leaves it and closes its connections.
func (c *Client) join(ctx context.Context, s *swarm, manifestURL string) (func(), error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("peer: client closed")
	}
	if c.swarms[s.id] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w %s", ErrAlreadyInSwarm, s.id)
	}
	c.swarms[s.id] = s
	if s.dl != nil {
		s.dl.sched.SetLoaded(c.loaded)
	}
	c.mu.Unlock()
	leave := func() {
		c.mu.Lock()
		delete(c.swarms, s.id)
		c.mu.Unlock()
		if c.sig != nil {
			// Final totals first: after Leave the coordinator drops them.
			c.sig.Stats(s.id, s.stats())
			c.sig.Leave(s.id)
		}
		s.shutdown()
	}
	if c.sig != nil {
		have := s.store.Have()
		if !s.store.CanServe() {
			have = make([]bool, len(have))
		}
		// A failed join is not fatal: peers are an optimisation and the
		// download carries on over HTTP alone.
		_ = c.sig.Join(ctx, s.id, manifestURL, have)
	}
	return leave, nil
}

// Download fetches resource (an absolute URL) into dst, from peers and
// HTTP at once, and returns when every block is verified and written. While
// it runs it serves verified blocks to others if dst is also an io.ReaderAt.
// If the origin changes the resource mid-way the download restarts on the
// new manifest; the result is one version, whole. If dst has a
// Truncate(int64) error method it is cut to the final size.
func (c *Client) Download(ctx context.Context, resource string, dst io.WriterAt) (Result, error) {
	start := time.Now()
	var res Result
	for attempt := 0; ; attempt++ {
		m, err := FetchManifest(ctx, c.opts.HTTPClient, resource, c.opts.Prefix)
		if err != nil {
			return res, err
		}
		s := newSwarm(c, NewBlockStore(m, dst))
		s.dl = newDownload(s, resource)
		mu, _ := ManifestURL(resource, c.opts.Prefix)
		leave, err := c.join(ctx, s, mu)
		if err != nil {
			return res, err
		}
		err = s.dl.run(ctx)
		leave()
		res.BytesFromHTTP += s.dl.fromHTTP.Load()
		res.BytesFromPeers += s.dl.fromPeers.Load()
		s.dl.mu.Lock()
		res.PeersUsed += len(s.dl.peersUsed)
		s.dl.mu.Unlock()
		res.Duration = time.Since(start)
		if errors.Is(err, ErrOriginChanged) && attempt < maxRestarts {
			res.Restarts++
			continue
		}
		if err != nil {
			return res, err
		}
		res.Size = m.Size
		if t, ok := dst.(interface{ Truncate(int64) error }); ok {
			if err := t.Truncate(m.Size); err != nil {
				return res, err
			}
		}
		return res, nil
	}
}

func (c *Client) progress(d *download) {
	if c.opts.Progress == nil {
		return
	}
	m := d.s.store.Manifest()
	loaded := int64(0)
	for i, ok := range d.s.store.Have() {
		if ok {
			loaded += int64(blockLen(m, i))
		}
	}
	c.opts.Progress(Progress{Loaded: loaded, Total: m.Size,
		FromHTTP: d.fromHTTP.Load(), FromPeers: d.fromPeers.Load()})
}

// Seed serves the verified blocks of resource to its swarm until ctx ends.
// from holds the content (it is verified block by block first); nil
// downloads it to a temporary file first, removed when Seed returns.
func (c *Client) Seed(ctx context.Context, resource string, from io.ReaderAt) error {
	if c.sig == nil {
		return errors.New("peer: seeding needs a signaller")
	}
	if from == nil {
		f, err := os.CreateTemp("", "p2pxhr-seed-*")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if _, err := c.Download(ctx, resource, f); err != nil {
			return err
		}
		from = f
	}
	m, err := FetchManifest(ctx, c.opts.HTTPClient, resource, c.opts.Prefix)
	if err != nil {
		return err
	}
	store, err := NewSeedStore(m, from)
	if err != nil {
		return err
	}
	mu, _ := ManifestURL(resource, c.opts.Prefix)
	leave, err := c.join(ctx, newSwarm(c, store), mu)
	if err != nil {
		return err
	}
	defer leave()
	<-ctx.Done()
	return nil
}

// Close leaves every swarm, closes all connections and the signaller, and
// waits for the Client's goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	swarms := c.swarms
	c.swarms = map[string]*swarm{}
	c.mu.Unlock()
	for _, s := range swarms {
		s.shutdown()
	}
	close(c.stop) // after shutdown: the dispatcher keeps wg above zero meanwhile
	var err error
	if c.sig != nil {
		err = c.sig.Close()
	}
	c.wg.Wait()
	if c.rtc != nil {
		if rerr := c.rtc.close(); err == nil {
			err = rerr
		}
	}
	return err
}
