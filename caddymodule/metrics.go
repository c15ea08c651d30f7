package caddymodule

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2pxhr/p2pxhr/coordinator"
	"github.com/p2pxhr/p2pxhr/protocol"
)

// metrics are the module's Prometheus metrics, registered once per Caddy
// metrics registry (one per loaded config) and shared by every p2pxhr
// handler of that config, so they appear on Caddy's /metrics.
type metrics struct {
	clientBytes *prometheus.CounterVec
	downloads   *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	rejected    *prometheus.CounterVec
	originBytes prometheus.Counter
	manifests   *prometheus.CounterVec
	// buildWaiters counts manifest requests waiting for a build now.
	buildWaiters prometheus.Gauge
	// builds counts builds hashing a body or queued for a slot, now.
	builds     *prometheus.GaugeVec
	injections prometheus.Counter
	relayBytes prometheus.Counter
	// workerRequests and workerBytes count what service workers answered
	// (serviceworker_stats.go).
	workerRequests *prometheus.CounterVec
	workerBytes    *prometheus.CounterVec
	coords         *coordinatorCollector
}

var (
	metricsMu         sync.Mutex
	metricsByRegistry = map[*prometheus.Registry]*metrics{}
)

// metricsFor returns the metrics registered on reg, registering them on
// first use. A nil registry (no metrics configured) gets a private one.
func metricsFor(reg *prometheus.Registry) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metricsMu.Lock()
	defer metricsMu.Unlock()
	if m, ok := metricsByRegistry[reg]; ok {
		return m
	}
	const ns = "p2pxhr"
	m := &metrics{
		clientBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "client_bytes_total",
			Help: "Bytes of finished downloads as reported by clients (client-claimed, validated and clamped), by source (http, peers, uploaded) and A/B group."},
			[]string{"source", "group"}),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "downloads_total",
			Help: "Downloads reported by clients, by A/B group and outcome."}, []string{"group", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "download_duration_seconds",
			Help:    "Duration of successful downloads reported by clients, by A/B group.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}, []string{"group"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reports_rejected_total",
			Help: "Client reports refused, by reason."}, []string{"reason"}),
		originBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "origin_bytes_total",
			Help: "Bytes of shareable resources the module let through from the origin (server-side truth)."}),
		manifests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "manifest_requests_total",
			Help: "Manifest builds and revalidations, by result: built (the origin streamed the resource), revalidated (unchanged, from the cache), refused, failed, abandoned (every requester went away)."},
			[]string{"result"}),
		buildWaiters: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "manifest_build_waiters",
			Help: "Manifest requests waiting for a build or revalidation now."}),
		builds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "manifest_builds",
			Help: "Manifest builds now, by state: hashing (reading and hashing a body) or queued (waiting for one of the hashing slots)."},
			[]string{"state"}),
		injections: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "injections_total",
			Help: "HTML pages that got the client tag."}),
		relayBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "relay_bytes_total",
			Help: "Bytes the embedded TURN server relayed between peers (server bandwidth, as HTTP would be)."}),
		workerRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "service_worker_requests_total",
			Help: "Responses the service worker answered from the swarm that moved bytes, as its reports tell (client-claimed), by outcome (ok, error, abort: the page stopped reading, as a <video> does when it seeks)."},
			[]string{"outcome"}),
		workerBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "service_worker_bytes_total",
			Help: "Bytes of the blocks service workers answered with, by where they came from (http, peers, cache: the browser's own cache or the worker's memory), as reported (client-claimed, clamped)."},
			[]string{"source"}),
		coords: newCoordinatorCollector(),
	}
	reg.MustRegister(m.clientBytes, m.downloads, m.duration, m.rejected, m.originBytes, m.manifests, m.buildWaiters, m.builds, m.injections, m.relayBytes, m.workerRequests, m.workerBytes, m.coords)
	metricsByRegistry[reg] = m
	return m
}

// forget drops the metrics of a registry whose config was unloaded.
func forgetMetrics(reg *prometheus.Registry) {
	metricsMu.Lock()
	delete(metricsByRegistry, reg)
	metricsMu.Unlock()
}

// coordinatorCollector reports the live state of the coordinators of one
// config: peers and swarms now, signals relayed, reports and bans.
type coordinatorCollector struct {
	mu     sync.Mutex
	coords map[*coordinator.Coordinator]struct{}

	peers, swarms, members, signals, reports, bans *prometheus.Desc
	loaded                                         *prometheus.Desc
	nodePeers, nodeSwarms                          *prometheus.Desc
	connections                                    *prometheus.Desc
	seeders, seedCached, seedUploaded              *prometheus.Desc
}

func newCoordinatorCollector() *coordinatorCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("p2pxhr_"+name, help, nil, nil)
	}
	return &coordinatorCollector{
		coords:  map[*coordinator.Coordinator]struct{}{},
		peers:   d("peers", "Peers connected to the coordinator now."),
		swarms:  d("swarms", "Swarms with at least one member now."),
		members: d("swarm_members", "Swarm memberships now (a peer in two swarms counts twice)."),
		signals: d("signals_relayed_total", "Signalling messages relayed between introduced peers."),
		reports: d("peer_reports_total", "Reports of peers that sent bad blocks or broke the protocol."),
		bans:    d("bans_total", "Peers banned from a swarm after reports."),
		loaded:  d("server_loaded", "p2pxhr sites whose server counts as loaded now (the offload policy), so clients lean on peers: 0 or 1 with one site."),
		nodePeers: prometheus.NewDesc("p2pxhr_cluster_node_peers",
			"With a NATS backplane: peers connected to each node of the cluster, as this node last heard.", []string{"node"}, nil),
		connections: prometheus.NewDesc("p2pxhr_peer_connections_total",
			"Attempts of peers to connect to a neighbour, as the offering side reported them: result connected (path host, srflx, prflx or relay: the selected candidate pair) or failed.",
			[]string{"result", "path"}, nil),
		seeders:      d("seeders", "Peers seeding from their cache now (browsers while their visitor is on the site, Go seeders): they serve and never download."),
		seedCached:   d("seeder_cached_bytes", "Bytes the seeders online announce holding."),
		seedUploaded: d("seeder_uploaded_bytes_total", "Bytes seeders reported uploading (client-claimed): what persistent seeding added."),
		nodeSwarms: prometheus.NewDesc("p2pxhr_cluster_node_swarms",
			"With a NATS backplane: swarms whose state each node of the cluster holds, as this node last heard.", []string{"node"}, nil),
	}
}

func (c *coordinatorCollector) add(co *coordinator.Coordinator) {
	c.mu.Lock()
	c.coords[co] = struct{}{}
	c.mu.Unlock()
}

func (c *coordinatorCollector) remove(co *coordinator.Coordinator) {
	c.mu.Lock()
	delete(c.coords, co)
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *coordinatorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.peers, c.swarms, c.members, c.signals, c.reports, c.bans, c.loaded, c.nodePeers, c.nodeSwarms, c.connections, c.seeders, c.seedCached, c.seedUploaded} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *coordinatorCollector) Collect(ch chan<- prometheus.Metric) {
	var sum coordinator.Stats
	nodes := map[string]coordinator.NodeStats{}
	connected := map[string]int64{}
	var failed, loaded int64
	c.mu.Lock()
	for co := range c.coords {
		if co.Loaded() {
			loaded++
		}
		s := co.Stats()
		for id, n := range s.Nodes {
			nodes[id] = n
		}
		sum.Peers += s.Peers
		sum.Swarms += s.Swarms
		sum.Members += s.Members
		sum.SignalsRelayed += s.SignalsRelayed
		sum.Reports += s.Reports
		sum.Bans += s.Bans
		sum.Seeding.Peers += s.Seeding.Peers
		sum.Seeding.CachedBytes += s.Seeding.CachedBytes
		sum.Seeding.BytesUploaded += s.Seeding.BytesUploaded
		for path, n := range s.Connections.Connected {
			connected[path] += n
		}
		failed += s.Connections.Failed
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(sum.Peers))
	ch <- prometheus.MustNewConstMetric(c.swarms, prometheus.GaugeValue, float64(sum.Swarms))
	ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(sum.Members))
	ch <- prometheus.MustNewConstMetric(c.signals, prometheus.CounterValue, float64(sum.SignalsRelayed))
	ch <- prometheus.MustNewConstMetric(c.reports, prometheus.CounterValue, float64(sum.Reports))
	ch <- prometheus.MustNewConstMetric(c.bans, prometheus.CounterValue, float64(sum.Bans))
	ch <- prometheus.MustNewConstMetric(c.seeders, prometheus.GaugeValue, float64(sum.Seeding.Peers))
	ch <- prometheus.MustNewConstMetric(c.seedCached, prometheus.GaugeValue, float64(sum.Seeding.CachedBytes))
	ch <- prometheus.MustNewConstMetric(c.seedUploaded, prometheus.CounterValue, float64(sum.Seeding.BytesUploaded))
	ch <- prometheus.MustNewConstMetric(c.loaded, prometheus.GaugeValue, float64(loaded))
	// Every path is exported from the start, so rates over them work
	// before the first attempt of each kind.
	for _, path := range []string{protocol.PathHost, protocol.PathSrflx, protocol.PathPrflx, protocol.PathRelay} {
		ch <- prometheus.MustNewConstMetric(c.connections, prometheus.CounterValue, float64(connected[path]), protocol.ConnectionConnected, path)
	}
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.CounterValue, float64(failed), protocol.ConnectionFailed, "")
	for id, n := range nodes {
		ch <- prometheus.MustNewConstMetric(c.nodePeers, prometheus.GaugeValue, float64(n.Peers), id)
		ch <- prometheus.MustNewConstMetric(c.nodeSwarms, prometheus.GaugeValue, float64(n.OwnedSwarms), id)
	}
}
