package peer

import (
	"context"
	"time"

	"github.com/pion/webrtc/v4"
)

// Introduction is the coordinator suggesting a neighbour in a swarm. Offer
// tells which side creates the WebRTC offer, so two peers never both do.
// Gone turns it into the opposite: the peer left the swarm (or reported
// us), so the connection to it is closed. Both travel on one channel so a
// departure and a later re-introduction of the same peer stay in order.
type Introduction struct {
	Swarm string
	Peer  string
	Offer bool
	Gone  bool
}

// Signal kinds, the same strings as the coordinator's signal messages.
const (
	SignalOffer     = "offer"
	SignalAnswer    = "answer"
	SignalCandidate = "candidate"
)

// Signal is one piece of WebRTC signalling relayed between two peers of a
// swarm. Data is the SDP for offers and answers, and the JSON of a
// webrtc.ICECandidateInit for candidates ("" marks the end of candidates).
type Signal struct {
	Swarm string
	From  string // set by the signaller on receipt
	To    string
	Kind  string
	Data  string
}

// SwarmStats are the running totals a peer reports for one swarm.
type SwarmStats struct {
	FromHTTP  int64
	FromPeers int64
	Uploaded  int64
}

// Signaller is how a Client meets other peers: the coordinator's WebSocket
// in production, a MemHub in tests. Channels are owned by the signaller and
// closed by Close. Methods other than Join and Send are fire-and-forget:
// losing one costs efficiency, never correctness.
type Signaller interface {
	// Join enters a swarm holding the blocks set in have.
	Join(ctx context.Context, swarm, manifestURL string, have []bool) error
	// Neighbours delivers introductions to peers of joined swarms.
	Neighbours() <-chan Introduction
	// Send relays a signal to peer to.
	Send(ctx context.Context, to string, sig Signal) error
	// Signals delivers signals from other peers.
	Signals() <-chan Signal
	// Have announces newly verified blocks.
	Have(swarm string, blocks []int)
	// Report tells the coordinator a neighbour misbehaved, never
	// connected, or did not fit (reason: one of the protocol.Report...
	// constants); the two are not introduced to each other again.
	Report(swarm, peer, reason string)
	// Received tells the coordinator a neighbour delivered a verified
	// block: the evidence that weighs against false reports of it.
	Received(swarm, peer string)
	// Stats reports running totals for a swarm.
	Stats(swarm string, s SwarmStats)
	// Leave exits a swarm.
	Leave(swarm string)
	// Loaded delivers the server's "loaded" hint: true means use HTTP only
	// for what peers cannot give in time.
	Loaded() <-chan bool
	// Close ends the session and closes the channels.
	Close() error
}

// ICEServerSource is a Signaller that learns ICE servers from the site (the
// coordinator's welcome); a Client uses them, before its own, for every new
// connection.
type ICEServerSource interface {
	ICEServers() []webrtc.ICEServer
}

// ConnectionReporter is a Signaller that passes connection outcomes on to
// the site (the coordinator's connection message).
type ConnectionReporter interface {
	ReportConnection(o ConnectionOutcome)
}

// ConnectionOutcome is how one attempt to reach a neighbour ended. Only
// the side that made the offer reports, once per attempt.
type ConnectionOutcome struct {
	Swarm, Peer string
	// Connected is true once the DataChannel opened; false when ICE failed
	// or no channel opened within the connect timeout.
	Connected bool
	// Path is the selected candidate pair's kind when connected: the less
	// direct of its two candidates, "relay", "srflx", "prflx" or "host".
	Path string
	// Elapsed is from the offer to the channel opening or the failure.
	Elapsed time.Duration
}
