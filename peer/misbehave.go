package peer

import "github.com/p2pxhr/p2pxhr/protocol"

// Misbehaviour makes a Client attack other peers, so that tests and
// benchmarks of other implementations (the browser client, another build
// of this one) can check their defences against a real peer. Never set it
// in production.
type Misbehaviour struct {
	// Corrupt names the blocks sent with wrong bytes (a liar).
	Corrupt func(block int) bool
	// ClaimAll announces every block and never answers for missing ones.
	ClaimAll bool
	// Reject declines every request with RejectReason instead of serving it.
	Reject       bool
	RejectReason protocol.RejectReason
	// Silent ignores every request.
	Silent bool
	// Trickle sends pieces at this many bytes per second (0: full speed).
	Trickle int
	// FalseReport, if set, is the reason this Client reports every
	// neighbour with to the coordinator once their channel is open and the
	// neighbour's hello has arrived: a sybil accusing honest peers.
	FalseReport string
}

// NewMisbehaving returns a Client that misbehaves as m says.
func NewMisbehaving(opts Options, m Misbehaviour) (*Client, error) {
	h := &testHooks{corrupt: m.Corrupt, claimAll: m.ClaimAll, silent: m.Silent,
		trickle: m.Trickle, falseReport: m.FalseReport}
	if m.Reject {
		h.reject = &m.RejectReason
	}
	opts.hooks = h
	return New(opts)
}

// testHooks make a Client misbehave, for tests of the honest side only.
type testHooks struct {
	corrupt     func(block int) bool   // send wrong bytes for these blocks
	claimAll    bool                   // announce every block; never answer for missing ones
	reject      *protocol.RejectReason // decline every request with this reason
	silent      bool                   // ignore every request
	trickle     int                    // bytes per second of pieces
	falseReport string                 // report every neighbour with this reason
}
