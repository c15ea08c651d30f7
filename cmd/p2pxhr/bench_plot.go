package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/p2pxhr/p2pxhr/internal/benchplot"
)

// writeBenchPlot draws one completion-time CDF panel per N (P2P against
// HTTP only) and, for a sweep, offload and mean completion against N; then
// how many times each block left the origin. With --no-http P2P is drawn
// against the swarm floor instead.
func writeBenchPlot(path string, cfg benchConfig, results []benchResult) error {
	var panels []benchplot.Panel
	for _, r := range results {
		title := fmt.Sprintf("N = %d: completion times", r.Peers)
		if r.Churned > 0 {
			title += fmt.Sprintf(" (%d left mid-way)", r.Churned)
		}
		series := []benchplot.Series{benchplot.CDF(fmt.Sprintf("P2P (mean %.1fs)", r.P2PMeanSeconds), r.P2PSeconds)}
		if !cfg.skipHTTP {
			series = append(series, benchplot.CDF(fmt.Sprintf("HTTP only (mean %.1fs)", r.HTTPMeanSeconds), r.HTTPSeconds))
		}
		panels = append(panels, benchplot.Panel{
			Title: title, XLabel: "seconds from arrival", YLabel: "fraction of downloads done",
			YMin: 0, YMax: 1, Series: series,
		})
	}
	if len(results) > 1 {
		var ns, off, lim, p2p, plain []float64
		for _, r := range results {
			ns = append(ns, float64(r.Peers))
			off = append(off, r.Offload)
			lim = append(lim, r.Limit)
			p2p = append(p2p, r.P2PMeanSeconds)
			if cfg.skipHTTP {
				plain = append(plain, r.FloorSeconds)
			} else {
				plain = append(plain, r.HTTPMeanSeconds)
			}
		}
		other := benchplot.Series{Name: "HTTP only", X: ns, Y: plain, Markers: true}
		if cfg.skipHTTP {
			other = benchplot.Series{Name: "swarm floor max(F/C, F/d)", X: ns, Y: plain, Dashed: true, Color: "#888"}
		}
		panels = append(panels,
			benchplot.Panel{
				Title: "offload against N (counted at the module)", XLabel: "peers (N)", YLabel: "offload",
				YMin: 0, YMax: 1,
				Series: []benchplot.Series{
					{Name: "offload", X: ns, Y: off, Markers: true},
					{Name: "limit (N-1)/N", X: ns, Y: lim, Dashed: true, Color: "#888"},
				},
			},
			benchplot.Panel{
				Title: "mean completion against N", XLabel: "peers (N)", YLabel: "seconds",
				Series: []benchplot.Series{
					{Name: "P2P", X: ns, Y: p2p, Markers: true},
					other,
				},
			})
	}
	if copies := copiesPanel(results); len(copies.Series) > 0 {
		panels = append(panels, copies)
	}
	arr := "at once"
	if cfg.arrivals > 0 {
		arr = "over " + cfg.arrivals.String()
	}
	title := fmt.Sprintf("p2pxhr bench: %s file, origin %s/s, arrivals %s", humanize.IBytes(uint64(cfg.size)),
		humanize.Bytes(uint64(cfg.originRate)), arr)
	if cfg.churn > 0 {
		title += fmt.Sprintf(", churn %.0f%%", cfg.churn*100)
	}
	var buf bytes.Buffer
	if err := benchplot.Render(&buf, title, panels, 2); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// copiesPanel shows, for each N, the fraction of blocks that left the
// origin k times (the P2P peers' range requests): 1 is the ideal.
func copiesPanel(results []benchResult) benchplot.Panel {
	p := benchplot.Panel{Title: "origin copies per block (P2P phase)", XLabel: "times a block left the origin",
		YLabel: "fraction of blocks", YMin: 0, YMax: 1}
	for _, r := range results {
		most, total := 0, 0
		for k, n := range r.BlockHTTPCopies {
			c, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			most = max(most, c)
			total += n
		}
		if total == 0 {
			continue
		}
		sr := benchplot.Series{Name: fmt.Sprintf("N = %d (%.2f copies of the file)", r.Peers, float64(r.OriginBytes)/float64(r.Size)), Markers: true}
		for c := 1; c <= most; c++ {
			sr.X = append(sr.X, float64(c))
			sr.Y = append(sr.Y, float64(r.BlockHTTPCopies[strconv.Itoa(c)])/float64(total))
		}
		p.Series = append(p.Series, sr)
	}
	return p
}
