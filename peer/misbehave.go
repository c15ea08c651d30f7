package peer

// Misbehaviour makes a Client lie to other peers, so that tests of other
// implementations (the browser client, another build of this one) can
// check their defences against a real peer. Never set it in production.
type Misbehaviour struct {
	// Corrupt names the blocks sent with wrong bytes.
	Corrupt func(block int) bool
	// ClaimAll announces every block and never answers for missing ones.
	ClaimAll bool
}

// NewMisbehaving returns a Client that lies as m says.
func NewMisbehaving(opts Options, m Misbehaviour) (*Client, error) {
	opts.hooks = &testHooks{corrupt: m.Corrupt, claimAll: m.ClaimAll}
	return New(opts)
}
