package peer

import (
	"errors"
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// RTCConfig chooses how a Client's peer connections reach others.
type RTCConfig struct {
	// ICEServers are STUN/TURN servers to use besides those the site's
	// coordinator names in its welcome (which come first); none are
	// needed on one machine.
	ICEServers []webrtc.ICEServer
	// Loopback restricts candidates to UDP4 on loopback with mDNS off: the
	// settings seen working for pion↔pion and pion↔Chromium on one machine
	// with no STUN server (the e2e tests with Go peers and tabs use them).
	Loopback bool
	// ListenAddr is the UDP address of the Client's one ICE socket; empty
	// means "127.0.0.1:0" with Loopback and ":0" otherwise.
	ListenAddr string
	// Net, if set, is the network ICE uses instead of the host's: a
	// pion/transport vnet in tests of NATs. ListenAddr is then unused and
	// each connection gets sockets of its own.
	Net transport.Net
}

// socketBuffer is the UDP socket buffer size: with the default 208 KiB the
// kernel drops datagrams on loopback bursts and SCTP throughput collapses.
const socketBuffer = 4 << 20

// rtcStack is one Client's pion API over one UDP socket shared by all its
// peer connections (the mux demultiplexes them by ICE username).
type rtcStack struct {
	api    *webrtc.API
	conn   *net.UDPConn       // nil on a virtual network
	mux    *ice.UDPMuxDefault // nil on a virtual network
	config webrtc.Configuration
}

func newRTCStack(cfg RTCConfig) (*rtcStack, error) {
	if cfg.Net != nil {
		var se webrtc.SettingEngine
		se.SetNet(cfg.Net)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		return &rtcStack{api: webrtc.NewAPI(webrtc.WithSettingEngine(se)),
			config: webrtc.Configuration{ICEServers: cfg.ICEServers}}, nil
	}
	addr := cfg.ListenAddr
	if addr == "" {
		addr = ":0"
		if cfg.Loopback {
			addr = "127.0.0.1:0"
		}
	}
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("peer: ICE listen address: %w", err)
	}
	conn, err := net.ListenUDP("udp4", ua)
	if err != nil {
		return nil, fmt.Errorf("peer: ICE socket: %w", err)
	}
	// Best effort: an unprivileged process may be capped by rmem_max.
	_ = conn.SetReadBuffer(socketBuffer)
	_ = conn.SetWriteBuffer(socketBuffer)
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: conn})

	var se webrtc.SettingEngine
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	return &rtcStack{
		api:    webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		conn:   conn,
		mux:    mux,
		config: webrtc.Configuration{ICEServers: cfg.ICEServers},
	}, nil
}

// newPeerConnection makes a peer connection using first the ICE servers
// the site named (from), then the configured ones.
func (r *rtcStack) newPeerConnection(from []webrtc.ICEServer) (*webrtc.PeerConnection, error) {
	cfg := r.config
	cfg.ICEServers = append(append([]webrtc.ICEServer(nil), from...), r.config.ICEServers...)
	return r.api.NewPeerConnection(cfg)
}

// close releases the socket; peer connections must be closed first.
func (r *rtcStack) close() error {
	if r.mux == nil {
		return nil
	}
	err := r.mux.Close()
	// The mux may already have closed the socket.
	if cerr := r.conn.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}
