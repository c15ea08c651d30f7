package protocol

import (
	"errors"
	"fmt"
)

// IsPeerOrSwarmID reports whether s is a valid id: 64 lowercase hex
// characters. Swarm ids are manifest ids (SHA-256); peer ids are 32 random
// bytes assigned by the server.
func IsPeerOrSwarmID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkID(typ, field, s string) error {
	if !IsPeerOrSwarmID(s) {
		return fmt.Errorf("protocol: %s: %s must be 64 lowercase hex characters", typ, field)
	}
	return nil
}

// checkText bounds a free-text field and refuses control characters, which
// have no business in ids, URLs or reasons and only help log injection.
func checkText(typ, field, s string, max int, allowEmpty bool) error {
	if len(s) > max {
		return fmt.Errorf("protocol: %s: %s longer than %d bytes", typ, field, max)
	}
	if s == "" && !allowEmpty {
		return fmt.Errorf("protocol: %s: %s is empty", typ, field)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("protocol: %s: %s contains a control character", typ, field)
		}
	}
	return nil
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate implements CoordinatorMessage.
func (m *Hello) Validate() error {
	if m.Version < 1 {
		return errors.New("protocol: hello: version must be a positive integer")
	}
	if len(m.Group) > MaxGroupSize || !isToken(m.Group) {
		return fmt.Errorf("protocol: hello: group must be up to %d of [A-Za-z0-9_-]", MaxGroupSize)
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Welcome) Validate() error {
	if m.Version < 1 {
		return errors.New("protocol: welcome: version must be a positive integer")
	}
	if err := checkID(TypeWelcome, "peer", m.Peer); err != nil {
		return err
	}
	l := m.Limits
	if l.MaxMessageSize < 0 || l.MaxSwarms < 0 || l.MaxNeighbours < 0 || l.MaxHaveBlocks < 0 ||
		l.MessagesPerSecond < 0 || l.MessageBurst < 0 {
		return errors.New("protocol: welcome: negative limit")
	}
	if len(m.ICEServers) > MaxICEServers {
		return fmt.Errorf("protocol: welcome: more than %d iceServers", MaxICEServers)
	}
	for _, s := range m.ICEServers {
		if err := s.Validate(); err != nil {
			return err
		}
	}
	switch m.Upload {
	case "", UploadAlways, UploadConsent, UploadNever:
		return nil
	}
	return errors.New(`protocol: welcome: upload must be "always", "consent" or "never"`)
}

// Validate checks one ICE server of a Welcome.
func (s ICEServer) Validate() error {
	if len(s.URLs) == 0 || len(s.URLs) > MaxICEURLs {
		return fmt.Errorf("protocol: welcome: iceServers[].urls must have 1 to %d URLs", MaxICEURLs)
	}
	for _, u := range s.URLs {
		if err := checkText(TypeWelcome, "iceServers[].urls[]", u, MaxICEURLSize, false); err != nil {
			return err
		}
		if !IsICEURL(u) {
			return errors.New("protocol: welcome: iceServers[].urls[] must start with stun:, stuns:, turn: or turns:")
		}
	}
	if err := checkText(TypeWelcome, "iceServers[].username", s.Username, MaxICECredentialSize, true); err != nil {
		return err
	}
	return checkText(TypeWelcome, "iceServers[].credential", s.Credential, MaxICECredentialSize, true)
}

// IsICEURL reports whether u names a STUN or TURN server by its scheme.
func IsICEURL(u string) bool {
	for _, p := range []string{"stun:", "stuns:", "turn:", "turns:"} {
		if len(u) > len(p) && u[:len(p)] == p {
			return true
		}
	}
	return false
}

// Validate implements CoordinatorMessage.
func (m *Join) Validate() error {
	if err := checkID(TypeJoin, "swarm", m.Swarm); err != nil {
		return err
	}
	if err := checkText(TypeJoin, "url", m.URL, MaxURLSize, true); err != nil {
		return err
	}
	if m.Blocks < 1 || m.Blocks > MaxBlocks {
		return fmt.Errorf("protocol: join: blocks must be in [1, %d]", MaxBlocks)
	}
	if err := m.Bitfield.Check(m.Blocks); err != nil {
		return fmt.Errorf("protocol: join: %w", err)
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Neighbours) Validate() error {
	if err := checkID(TypeNeighbours, "swarm", m.Swarm); err != nil {
		return err
	}
	if len(m.Peers) > MaxNeighboursPerMessage {
		return fmt.Errorf("protocol: neighbours: more than %d peers", MaxNeighboursPerMessage)
	}
	for _, p := range m.Peers {
		if err := checkID(TypeNeighbours, "peers[].id", p.ID); err != nil {
			return err
		}
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Signal) Validate() error {
	if err := checkID(TypeSignal, "swarm", m.Swarm); err != nil {
		return err
	}
	switch {
	case m.To != "" && m.From != "":
		return errors.New("protocol: signal: only one of to and from may be set")
	case m.To != "":
		if err := checkID(TypeSignal, "to", m.To); err != nil {
			return err
		}
	case m.From != "":
		if err := checkID(TypeSignal, "from", m.From); err != nil {
			return err
		}
	default:
		return errors.New("protocol: signal: to (client) or from (server) is required")
	}
	switch m.Kind {
	case SignalOffer, SignalAnswer:
		if m.Mid != "" {
			return errors.New("protocol: signal: mid is only for candidates")
		}
		if m.Data == "" {
			return fmt.Errorf("protocol: signal: %s without SDP", m.Kind)
		}
		if len(m.Data) > MaxSDPSize {
			return fmt.Errorf("protocol: signal: SDP longer than %d bytes", MaxSDPSize)
		}
	case SignalCandidate:
		if err := checkText(TypeSignal, "candidate", m.Data, MaxCandidateSize, true); err != nil {
			return err
		}
		if err := checkText(TypeSignal, "mid", m.Mid, MaxMidSize, true); err != nil {
			return err
		}
	default:
		return errors.New(`protocol: signal: kind must be "offer", "answer" or "candidate"`)
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Have) Validate() error {
	if err := checkID(TypeHave, "swarm", m.Swarm); err != nil {
		return err
	}
	if len(m.Blocks) == 0 {
		return errors.New("protocol: have: no blocks")
	}
	if len(m.Blocks) > MaxHaveBlocks {
		return fmt.Errorf("protocol: have: more than %d blocks in one message", MaxHaveBlocks)
	}
	for _, b := range m.Blocks {
		if b < 0 || b >= MaxBlocks {
			return fmt.Errorf("protocol: have: block index outside [0, %d)", MaxBlocks)
		}
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Leave) Validate() error { return checkID(TypeLeave, "swarm", m.Swarm) }

// Validate implements CoordinatorMessage.
func (m *Stats) Validate() error {
	if err := checkID(TypeStats, "swarm", m.Swarm); err != nil {
		return err
	}
	for _, v := range []int64{m.BytesFromHTTP, m.BytesFromPeers, m.BytesUploaded} {
		if v < 0 || v > MaxCounter {
			return errors.New("protocol: stats: counters must be in [0, 2^53-1]")
		}
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Report) Validate() error {
	if err := checkID(TypeReport, "swarm", m.Swarm); err != nil {
		return err
	}
	if err := checkID(TypeReport, "peer", m.Peer); err != nil {
		return err
	}
	switch m.Reason {
	case ReportBadBlock, ReportProtocol, ReportUnresponsive, ReportUnreachable, ReportFull:
	default:
		return errors.New(`protocol: report: reason must be "bad-block", "protocol", "unresponsive", "unreachable" or "full"`)
	}
	return nil
}

// Validate implements CoordinatorMessage.
func (m *Connection) Validate() error {
	if err := checkID(TypeConnection, "swarm", m.Swarm); err != nil {
		return err
	}
	if err := checkID(TypeConnection, "peer", m.Peer); err != nil {
		return err
	}
	switch m.Result {
	case ConnectionConnected:
		switch m.Path {
		case PathHost, PathSrflx, PathPrflx, PathRelay:
			return nil
		}
		return errors.New(`protocol: connection: path must be "host", "srflx", "prflx" or "relay"`)
	case ConnectionFailed:
		if m.Path != "" {
			return errors.New("protocol: connection: a failed attempt has no path")
		}
		return nil
	}
	return errors.New(`protocol: connection: result must be "connected" or "failed"`)
}

// Validate implements CoordinatorMessage.
func (m *Received) Validate() error {
	if err := checkID(TypeReceived, "swarm", m.Swarm); err != nil {
		return err
	}
	return checkID(TypeReceived, "peer", m.Peer)
}

// Validate implements CoordinatorMessage.
func (m *Load) Validate() error { return nil }

// Validate implements CoordinatorMessage.
func (m *PeerLeft) Validate() error {
	if err := checkID(TypePeerLeft, "swarm", m.Swarm); err != nil {
		return err
	}
	return checkID(TypePeerLeft, "peer", m.Peer)
}

// Validate implements CoordinatorMessage.
func (m *Error) Validate() error {
	if m.Code == "" || len(m.Code) > MaxCodeSize || !isToken(m.Code) {
		return fmt.Errorf("protocol: error: code must be 1 to %d of [A-Za-z0-9_-]", MaxCodeSize)
	}
	if err := checkText(TypeError, "message", m.Message, MaxErrorMessageSize, true); err != nil {
		return err
	}
	if m.Swarm != "" {
		return checkID(TypeError, "swarm", m.Swarm)
	}
	return nil
}
