package protocol

// Coordinator messages: JSON text frames over the coordinator WebSocket.
// Every message is an object with a "type" field naming one of the types
// below; the other fields are those of the Go struct. A connection opens
// with the client's Hello (carrying the protocol version) and the server's
// Welcome (carrying the peer id and the limits the server enforces).
// docs/PROTOCOL.md section 3 is the prose version of this file.

// CoordinatorVersion is the coordinator protocol version a client states in
// Hello. A server refuses a version it does not speak.
const CoordinatorVersion = 1

// Limits on coordinator messages. They bound what a decoder allocates, so
// the numbers are part of the protocol: both ends enforce them.
const (
	// MaxCoordinatorMessageSize bounds one message, in bytes of JSON,
	// except a Join.
	MaxCoordinatorMessageSize = 64 << 10
	// MaxJoinMessageSize bounds a Join, whose bitfield for MaxBlocks
	// blocks alone is 174,764 characters of base64; with the longest URL
	// (its characters \u-escaped) it still fits.
	MaxJoinMessageSize = 192 << 10
	// MaxSDPSize bounds the SDP of an offer or answer.
	MaxSDPSize = 16 << 10
	// MaxCandidateSize bounds one ICE candidate line.
	MaxCandidateSize = 1024
	// MaxMidSize bounds the media id sent with a candidate.
	MaxMidSize = 32
	// MaxURLSize bounds the resource URL given in Join.
	MaxURLSize = 2048
	// MaxGroupSize bounds the A/B group named in Hello.
	MaxGroupSize = 32
	// MaxNeighboursPerMessage bounds the peers named in one Neighbours.
	MaxNeighboursPerMessage = 64
	// MaxHaveBlocks bounds the block indexes batched in one Have.
	MaxHaveBlocks = 1024
	// MaxErrorMessageSize bounds the text of an Error.
	MaxErrorMessageSize = 256
	// MaxCodeSize bounds an Error code.
	MaxCodeSize = 32
	// MaxBitfieldBytes bounds a decoded bitfield: one bit per block, up to
	// MaxBlocks.
	MaxBitfieldBytes = MaxBlocks / 8
	// MaxCounter bounds the byte counters of Stats: the largest integer a
	// JavaScript number holds exactly (2^53 - 1).
	MaxCounter = 1<<53 - 1
	// MaxICEServers bounds the ICE servers in one Welcome, MaxICEURLs the
	// URLs of one server, MaxICEURLSize one URL and MaxICECredentialSize
	// a username or credential.
	MaxICEServers        = 16
	MaxICEURLs           = 8
	MaxICEURLSize        = 512
	MaxICECredentialSize = 256
)

// Message type names, the value of the "type" field.
const (
	TypeHello      = "hello"
	TypeWelcome    = "welcome"
	TypeJoin       = "join"
	TypeNeighbours = "neighbours"
	TypeSignal     = "signal"
	TypeHave       = "have"
	TypeLeave      = "leave"
	TypeStats      = "stats"
	TypeReport     = "report"
	TypeReceived   = "received"
	TypeLoad       = "load"
	TypePeerLeft   = "peer-left"
	TypeError      = "error"
	TypeConnection = "connection"
)

// Signal kinds: what Signal.Data holds.
const (
	SignalOffer     = "offer"
	SignalAnswer    = "answer"
	SignalCandidate = "candidate"
)

// Report reasons.
const (
	// ReportBadBlock: the peer sent a block whose SHA-256 did not match the
	// manifest. The reporter has proof, so one report is enough for the
	// coordinator to stop introducing the two to each other.
	ReportBadBlock = "bad-block"
	// ReportProtocol: the peer broke the peer wire protocol.
	ReportProtocol = "protocol"
	// ReportUnresponsive: the channel opened but the peer served nothing
	// useful in time (it declined or ignored requests, or trickled). Not
	// evidence against the peer (a stalled channel may be the path's
	// fault): the coordinator only unlinks the two.
	ReportUnresponsive = "unresponsive"
	// ReportUnreachable: no channel opened within the connect timeout (or
	// no offer came). The coordinator frees the link and, if the peer never
	// signalled on it, ranks it lower: an idle joiner must not hold others'
	// link slots.
	ReportUnreachable = "unreachable"
	// ReportFull: the reporter has no room for this link (it is at its own
	// connection cap). The link is freed; nobody is blamed.
	ReportFull = "full"
)

// Upload policies a Welcome states (see Welcome.Upload).
const (
	// UploadAlways: visitors' browsers serve blocks to others (while a
	// page downloads, and from their cache while on the site).
	UploadAlways = "always"
	// UploadConsent: only after the page recorded the visitor's consent.
	UploadConsent = "consent"
	// UploadNever: visitors only download; peers that serve are the
	// operator's own (p2pxhr seed).
	UploadNever = "never"
)

// Connection results and paths (see Connection).
const (
	ConnectionConnected = "connected"
	ConnectionFailed    = "failed"

	PathHost  = "host"
	PathSrflx = "srflx"
	PathPrflx = "prflx"
	PathRelay = "relay"
)

// CoordinatorMessage is one of the message types below (always a pointer).
type CoordinatorMessage interface {
	// CoordinatorType returns the value of the "type" field.
	CoordinatorType() string
	// Validate checks every field against the protocol's rules and limits.
	Validate() error
}

// Hello is the client's first message.
type Hello struct {
	// Version is the coordinator protocol version the client speaks.
	Version int `json:"version"`
	// Group is the A/B group the page was assigned, if any: up to
	// MaxGroupSize of [A-Za-z0-9_-]. Stats are broken down by it.
	Group string `json:"group,omitempty"`
}

// Welcome is the server's answer to Hello.
type Welcome struct {
	// Version is the protocol version the server will speak.
	Version int `json:"version"`
	// Peer is the id the server assigned to this connection; other peers
	// know it by this id.
	Peer string `json:"peer"`
	// Loaded tells whether the server is loaded right now (see Load).
	Loaded bool `json:"loaded"`
	// Limits are the limits this server enforces on the connection.
	Limits CoordinatorLimits `json:"limits"`
	// ICEServers are the STUN and TURN servers to give RTCPeerConnection,
	// best first: the site's embedded STUN server, the configured ones,
	// then TURN with credentials made for this connection. The encoder
	// always sends the list (possibly empty); a server that sends it also
	// accepts Connection. Nil after decoding means an older server.
	ICEServers []ICEServer `json:"iceServers"`
	// Upload is the site's policy on visitors' uploads (UploadAlways,
	// UploadConsent, UploadNever), which the browser client obeys. Empty
	// (an older server) means UploadAlways.
	Upload string `json:"upload,omitempty"`
	// Assigns tells that the server hands out blocks to fetch from the
	// origin (Fetch, Assign, Release; coordinator_assign.go).
	Assigns bool `json:"assigns,omitempty"`
}

// ICEServer is one STUN or TURN server, as RTCIceServer has it.
type ICEServer struct {
	// URLs are stun:, stuns:, turn: or turns: URLs of one server.
	URLs []string `json:"urls"`
	// Username and Credential authenticate to TURN.
	Username   string `json:"username,omitempty"`
	Credential string `json:"credential,omitempty"`
}

// CoordinatorLimits tells a client what the server will accept, so a
// well-behaved client never trips them.
type CoordinatorLimits struct {
	MaxMessageSize    int `json:"maxMessageSize"`
	MaxSwarms         int `json:"maxSwarms"`
	MaxNeighbours     int `json:"maxNeighbours"`
	MaxHaveBlocks     int `json:"maxHaveBlocks"`
	MessagesPerSecond int `json:"messagesPerSecond"`
	MessageBurst      int `json:"messageBurst"`
}

// Join asks to enter a swarm with the blocks the client already holds.
type Join struct {
	// Swarm is the manifest id (64 lowercase hex).
	Swarm string `json:"swarm"`
	// URL is the resource URL the manifest was fetched for; informative.
	URL string `json:"url,omitempty"`
	// Blocks is the manifest's block count.
	Blocks int `json:"blocks"`
	// Bitfield has one bit per block, set for blocks held.
	Bitfield Bitfield `json:"bitfield"`
	// Seed marks a seeder: a member that serves the blocks of its
	// bitfield and will not download (a browser seeding from its cache,
	// a Go peer's seed). The coordinator introduces it only to members
	// lacking a block it holds.
	Seed bool `json:"seed,omitempty"`
}

// Neighbours introduces peers of one swarm. The server sends it in answer
// to Join (possibly with no peers) and again whenever it suggests more.
type Neighbours struct {
	Swarm string      `json:"swarm"`
	Peers []Neighbour `json:"peers"`
}

// Neighbour is one introduced peer. Offer names the side that creates the
// WebRTC offer: of two introduced peers exactly one is told Offer true.
type Neighbour struct {
	ID    string `json:"id"`
	Offer bool   `json:"offer"`
}

// Signal carries WebRTC signalling between two peers the coordinator
// introduced in the same swarm. A client sets To; the server relays it with
// To cleared and From set to the sender.
type Signal struct {
	Swarm string `json:"swarm"`
	To    string `json:"to,omitempty"`
	From  string `json:"from,omitempty"`
	// Kind is SignalOffer, SignalAnswer or SignalCandidate.
	Kind string `json:"kind"`
	// Data is the SDP for an offer or answer, the candidate line
	// ("candidate:...") for a candidate; an empty candidate means the end
	// of candidates.
	Data string `json:"data"`
	// Mid is the media id a candidate belongs to (candidates only).
	Mid string `json:"mid,omitempty"`
}

// Have tells the coordinator of blocks gained since the last Have or Join;
// clients batch them.
type Have struct {
	Swarm  string `json:"swarm"`
	Blocks []int  `json:"blocks"`
}

// Leave leaves a swarm; closing the connection leaves every swarm.
type Leave struct {
	Swarm string `json:"swarm"`
}

// Stats reports byte counters for one swarm, cumulative since Join, so a
// lost or repeated report does no harm. Counters never decrease.
type Stats struct {
	Swarm          string `json:"swarm"`
	BytesFromHTTP  int64  `json:"bytesFromHttp"`
	BytesFromPeers int64  `json:"bytesFromPeers"`
	BytesUploaded  int64  `json:"bytesUploaded"`
}

// Report names a neighbour that misbehaved.
type Report struct {
	Swarm string `json:"swarm"`
	Peer  string `json:"peer"`
	// Reason is one of the Report... constants.
	Reason string `json:"reason"`
}

// Connection reports how one attempt to reach a neighbour ended, so that
// operators see how well visitors connect. The side that made the offer
// reports, once per attempt: Result is ConnectionConnected once the
// DataChannel opened, with Path the kind of the selected candidate pair
// (the less direct of its two candidates: relay, then srflx, prflx,
// host), or ConnectionFailed (ICE failed, or no channel in time) with no
// Path. Send it only to a server whose Welcome carried ICEServers.
type Connection struct {
	Swarm  string `json:"swarm"`
	Peer   string `json:"peer"`
	Result string `json:"result"`
	Path   string `json:"path,omitempty"`
}

// Received tells the coordinator that the sender got at least one verified
// block from Peer over their link: evidence for Peer, which the coordinator
// weighs against reports of it (docs/PROTOCOL.md section 3.6). Sent once
// per link.
type Received struct {
	Swarm string `json:"swarm"`
	Peer  string `json:"peer"`
}

// Load is the server's hint that it is (or is no longer) loaded; while
// loaded, clients should take more blocks from peers.
type Load struct {
	Loaded bool `json:"loaded"`
}

// PeerLeft tells a peer that a neighbour it was introduced to has gone.
type PeerLeft struct {
	Swarm string `json:"swarm"`
	Peer  string `json:"peer"`
}

// Error tells a client what was wrong with what it sent. Swarm is set when
// the error concerns one swarm. If the server then closes the connection,
// the close code says why (see docs/PROTOCOL.md).
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Swarm   string `json:"swarm,omitempty"`
}

// Error codes sent by the server.
const (
	ErrCodeBadMessage     = "bad-message"
	ErrCodeHelloFirst     = "hello-first"
	ErrCodeVersion        = "version"
	ErrCodeUnexpected     = "unexpected-type"
	ErrCodeUnknownSwarm   = "unknown-swarm"
	ErrCodeTooManySwarms  = "too-many-swarms"
	ErrCodeSwarmFull      = "swarm-full"
	ErrCodeAlreadyJoined  = "already-joined"
	ErrCodeNotJoined      = "not-joined"
	ErrCodeNotIntroduced  = "not-introduced"
	ErrCodeBlockCount     = "block-count"
	ErrCodeBadBlockIndex  = "bad-block-index"
	ErrCodeStatsDecreased = "stats-decreased"
	ErrCodeRateLimited    = "rate-limited"
	ErrCodeSlowReader     = "slow-reader"
	ErrCodeShutdown       = "shutdown"
)

// CoordinatorType implements CoordinatorMessage.
func (*Hello) CoordinatorType() string { return TypeHello }

// CoordinatorType implements CoordinatorMessage.
func (*Welcome) CoordinatorType() string { return TypeWelcome }

// CoordinatorType implements CoordinatorMessage.
func (*Join) CoordinatorType() string { return TypeJoin }

// CoordinatorType implements CoordinatorMessage.
func (*Neighbours) CoordinatorType() string { return TypeNeighbours }

// CoordinatorType implements CoordinatorMessage.
func (*Signal) CoordinatorType() string { return TypeSignal }

// CoordinatorType implements CoordinatorMessage.
func (*Have) CoordinatorType() string { return TypeHave }

// CoordinatorType implements CoordinatorMessage.
func (*Leave) CoordinatorType() string { return TypeLeave }

// CoordinatorType implements CoordinatorMessage.
func (*Stats) CoordinatorType() string { return TypeStats }

// CoordinatorType implements CoordinatorMessage.
func (*Report) CoordinatorType() string { return TypeReport }

// CoordinatorType implements CoordinatorMessage.
func (*Connection) CoordinatorType() string { return TypeConnection }

// CoordinatorType implements CoordinatorMessage.
func (*Received) CoordinatorType() string { return TypeReceived }

// CoordinatorType implements CoordinatorMessage.
func (*Load) CoordinatorType() string { return TypeLoad }

// CoordinatorType implements CoordinatorMessage.
func (*PeerLeft) CoordinatorType() string { return TypePeerLeft }

// CoordinatorType implements CoordinatorMessage.
func (*Error) CoordinatorType() string { return TypeError }

// newCoordinatorMessage returns an empty message of the named type.
func newCoordinatorMessage(typ string) CoordinatorMessage {
	switch typ {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeJoin:
		return new(Join)
	case TypeNeighbours:
		return new(Neighbours)
	case TypeSignal:
		return new(Signal)
	case TypeHave:
		return new(Have)
	case TypeLeave:
		return new(Leave)
	case TypeStats:
		return new(Stats)
	case TypeReport:
		return new(Report)
	case TypeConnection:
		return new(Connection)
	case TypeReceived:
		return new(Received)
	case TypeLoad:
		return new(Load)
	case TypePeerLeft:
		return new(PeerLeft)
	case TypeError:
		return new(Error)
	case TypeFetch:
		return new(Fetch)
	case TypeAssign:
		return new(Assign)
	case TypeRelease:
		return new(Release)
	}
	return nil
}
