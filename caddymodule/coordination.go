package caddymodule

import (
	"net/http"
	"net/netip"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/p2pxhr/p2pxhr/coordinator"
)

// newCoordinator sets up the coordinator behind {prefix}ws: swarms open
// only for manifests built here, and the rate limit's pressure is the
// "server loaded" hint.
func (h *Handler) newCoordinator() (*coordinator.Coordinator, error) {
	bp, err := h.newBackplane()
	if err != nil {
		return nil, err
	}
	c, err := coordinator.New(coordinator.Config{
		Backplane:                bp,
		KnownSiteSwarm:           h.manifests.Known,
		Site:                     siteOf,
		SwarmBlocks:              h.manifests.Blocks,
		SwarmSize:                h.manifests.Size,
		MaxNeighbours:            h.MaxNeighbours,
		MaxConnectionsPerAddress: h.MaxConnectionsPerAddress,
		AllowedOrigins:           h.AllowedOrigins,
		ClientIP:                 clientIP,
		Loaded:                   h.limiter.Loaded,
		ICEServers:               h.iceServersFor,
		Logger:                   h.logger.Named("coordinator"),
	})
	if err != nil && bp != nil {
		bp.Close()
	}
	return c, err
}

// clientIP is the visitor's address as Caddy determined it (trusted
// proxies applied), for the coordinator's same-network preference.
func clientIP(r *http.Request) netip.Addr {
	if s, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok {
		if ip, err := netip.ParseAddr(s); err == nil {
			return ip.Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
