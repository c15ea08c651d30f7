package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/coordinator_vectors.json from the Go cases")

const vectorsPath = "testdata/coordinator_vectors.json"

// coordinatorVectorFile is the layout of testdata/coordinator_vectors.json,
// which the JS client's tests read too.
type coordinatorVectorFile struct {
	Comment string                 `json:"comment"`
	Version int                    `json:"version"`
	Valid   []coordinatorVector    `json:"valid"`
	Invalid []coordinatorBadVector `json:"invalid"`
}

type coordinatorVector struct {
	Name  string          `json:"name"`
	JSON  string          `json:"json"`
	Value json.RawMessage `json:"value"`
}

// coordinatorBadVector holds input as text (JSON) or, for bytes that are
// not UTF-8, as base64 (Base64).
type coordinatorBadVector struct {
	Name   string `json:"name"`
	JSON   string `json:"json,omitempty"`
	Base64 string `json:"base64,omitempty"`
	Error  string `json:"error"`
}

var (
	idA = strings.Repeat("a", 64)
	idB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	idS = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

// validCoordinatorCases is the source of truth for the valid vectors: one
// per message type, plus variants where a field changes the encoding.
var validCoordinatorCases = []struct {
	name string
	msg  CoordinatorMessage
}{
	{"hello", &Hello{Version: 1, Group: "b"}},
	{"hello-no-group", &Hello{Version: 1}},
	{"welcome", &Welcome{Version: 1, Peer: idA, Loaded: false, Limits: CoordinatorLimits{
		MaxMessageSize: 65536, MaxSwarms: 8, MaxNeighbours: 6, MaxHaveBlocks: 1024, MessagesPerSecond: 50, MessageBurst: 200},
		ICEServers: []ICEServer{
			{URLs: []string{"stun:www.example.com:3478"}},
			{URLs: []string{"turn:www.example.com:3478?transport=udp"}, Username: "1767225600:5f0c2a9e41d7b3c8", Credential: "q1bWnSuPp7D0sHc3yJmYV2s1cTQ="},
		}}},
	{"welcome-no-ice-servers", &Welcome{Version: 1, Peer: idA, Loaded: true, Limits: CoordinatorLimits{
		MaxMessageSize: 65536, MaxSwarms: 8, MaxNeighbours: 6, MaxHaveBlocks: 1024, MessagesPerSecond: 50, MessageBurst: 200},
		ICEServers: []ICEServer{}}},
	{"welcome-upload-consent", &Welcome{Version: 1, Peer: idA, Limits: CoordinatorLimits{
		MaxMessageSize: 65536, MaxSwarms: 8, MaxNeighbours: 6, MaxHaveBlocks: 1024, MessagesPerSecond: 50, MessageBurst: 200},
		ICEServers: []ICEServer{}, Upload: UploadConsent}},
	{"join", &Join{Swarm: idS, URL: "/video/big.mp4", Blocks: 10, Bitfield: Bitfield{0xa0, 0x40}}},
	{"join-seeder", &Join{Swarm: idS, Blocks: 3, Bitfield: Bitfield{0xe0}}},
	{"join-seed", &Join{Swarm: idS, URL: "/video/big.mp4", Blocks: 3, Bitfield: Bitfield{0xe0}, Seed: true}},
	{"neighbours", &Neighbours{Swarm: idS, Peers: []Neighbour{{ID: idA, Offer: true}, {ID: idB, Offer: false}}}},
	{"neighbours-empty", &Neighbours{Swarm: idS, Peers: []Neighbour{}}},
	{"signal-offer", &Signal{Swarm: idS, To: idB, Kind: SignalOffer, Data: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}},
	{"signal-answer-relayed", &Signal{Swarm: idS, From: idA, Kind: SignalAnswer, Data: "v=0\r\n"}},
	{"signal-candidate", &Signal{Swarm: idS, To: idB, Kind: SignalCandidate,
		Data: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", Mid: "0"}},
	{"signal-end-of-candidates", &Signal{Swarm: idS, From: idA, Kind: SignalCandidate, Data: ""}},
	{"have", &Have{Swarm: idS, Blocks: []int{0, 7, 8}}},
	{"leave", &Leave{Swarm: idS}},
	{"stats", &Stats{Swarm: idS, BytesFromHTTP: 1048576, BytesFromPeers: 9007199254740991, BytesUploaded: 0}},
	{"report", &Report{Swarm: idS, Peer: idB, Reason: ReportBadBlock}},
	{"connection", &Connection{Swarm: idS, Peer: idB, Result: ConnectionConnected, Path: PathSrflx}},
	{"connection-failed", &Connection{Swarm: idS, Peer: idB, Result: ConnectionFailed}},
	{"report-unresponsive", &Report{Swarm: idS, Peer: idB, Reason: ReportUnresponsive}},
	{"report-unreachable", &Report{Swarm: idS, Peer: idB, Reason: ReportUnreachable}},
	{"report-full", &Report{Swarm: idS, Peer: idB, Reason: ReportFull}},
	{"received", &Received{Swarm: idS, Peer: idB}},
	{"load", &Load{Loaded: true}},
	{"peer-left", &PeerLeft{Swarm: idS, Peer: idB}},
	{"error", &Error{Code: ErrCodeUnknownSwarm, Message: "no manifest with this id", Swarm: idS}},
	{"welcome-assigns", &Welcome{Version: 1, Peer: idA, Loaded: false, Limits: CoordinatorLimits{
		MaxMessageSize: 65536, MaxSwarms: 8, MaxNeighbours: 6, MaxHaveBlocks: 1024, MessagesPerSecond: 50, MessageBurst: 200},
		ICEServers: []ICEServer{}, Assigns: true}},
	{"fetch", &Fetch{Swarm: idS, Want: 3}},
	{"fetch-claim", &Fetch{Swarm: idS, Want: 2, Claim: []int{5, 9}}},
	{"fetch-stop", &Fetch{Swarm: idS, Want: 0}},
	{"assign", &Assign{Swarm: idS, Blocks: []int{17, 4}, Lease: 8000}},
	{"release", &Release{Swarm: idS, Blocks: []int{4}}},
}

// invalidCoordinatorCases must each fail to decode with the error substring.
var invalidCoordinatorCases = []coordinatorBadVector{
	{Name: "not-json", JSON: `hello`, Error: "not a JSON object"},
	{Name: "array", JSON: `[1,2]`, Error: "not a JSON object"},
	{Name: "missing-type", JSON: `{"version":1}`, Error: `missing "type"`},
	{Name: "unknown-type", JSON: `{"type":"gossip"}`, Error: `unknown type "gossip"`},
	{Name: "type-not-string", JSON: `{"type":5}`, Error: "not a JSON object"},
	{Name: "hello-no-version", JSON: `{"type":"hello"}`, Error: "version must be a positive integer"},
	{Name: "hello-bad-group", JSON: `{"type":"hello","version":1,"group":"a b"}`, Error: "group must be"},
	{Name: "join-uppercase-swarm", JSON: `{"type":"join","swarm":"` + strings.ToUpper(idS) + `","blocks":1,"bitfield":"AA=="}`, Error: "swarm must be 64 lowercase hex"},
	{Name: "join-short-swarm", JSON: `{"type":"join","swarm":"abc","blocks":1,"bitfield":"AA=="}`, Error: "swarm must be 64 lowercase hex"},
	{Name: "join-bitfield-length", JSON: `{"type":"join","swarm":"` + idS + `","blocks":9,"bitfield":"AA=="}`, Error: "bitfield has 1 bytes, 9 blocks need 2"},
	{Name: "join-bitfield-spare-bits", JSON: `{"type":"join","swarm":"` + idS + `","blocks":3,"bitfield":"8A=="}`, Error: "bits set past the last block"},
	{Name: "join-bitfield-not-base64", JSON: `{"type":"join","swarm":"` + idS + `","blocks":3,"bitfield":"!!"}`, Error: "not standard padded base64"},
	{Name: "join-bitfield-number", JSON: `{"type":"join","swarm":"` + idS + `","blocks":3,"bitfield":5}`, Error: "bitfield is not a string"},
	{Name: "join-zero-blocks", JSON: `{"type":"join","swarm":"` + idS + `","blocks":0,"bitfield":""}`, Error: "blocks must be in [1, 1048576]"},
	{Name: "join-too-many-blocks", JSON: `{"type":"join","swarm":"` + idS + `","blocks":1048577,"bitfield":""}`, Error: "blocks must be in [1, 1048576]"},
	{Name: "join-url-control", JSON: `{"type":"join","swarm":"` + idS + `","url":"/a\nb","blocks":1,"bitfield":"AA=="}`, Error: "url contains a control character"},
	{Name: "neighbours-bad-id", JSON: `{"type":"neighbours","swarm":"` + idS + `","peers":[{"id":"x","offer":true}]}`, Error: "peers[].id must be 64 lowercase hex"},
	{Name: "signal-no-to", JSON: `{"type":"signal","swarm":"` + idS + `","kind":"offer","data":"v=0"}`, Error: "to (client) or from (server) is required"},
	{Name: "signal-to-and-from", JSON: `{"type":"signal","swarm":"` + idS + `","to":"` + idA + `","from":"` + idB + `","kind":"offer","data":"v=0"}`, Error: "only one of to and from"},
	{Name: "signal-bad-kind", JSON: `{"type":"signal","swarm":"` + idS + `","to":"` + idA + `","kind":"chat","data":"hi"}`, Error: "kind must be"},
	{Name: "signal-empty-offer", JSON: `{"type":"signal","swarm":"` + idS + `","to":"` + idA + `","kind":"offer","data":""}`, Error: "offer without SDP"},
	{Name: "signal-sdp-too-long", JSON: `{"type":"signal","swarm":"` + idS + `","to":"` + idA + `","kind":"offer","data":"` + strings.Repeat("x", MaxSDPSize+1) + `"}`, Error: "SDP longer than 16384 bytes"},
	{Name: "signal-candidate-too-long", JSON: `{"type":"signal","swarm":"` + idS + `","to":"` + idA + `","kind":"candidate","data":"` + strings.Repeat("x", MaxCandidateSize+1) + `"}`, Error: "candidate longer than 1024 bytes"},
	{Name: "have-empty", JSON: `{"type":"have","swarm":"` + idS + `","blocks":[]}`, Error: "have: no blocks"},
	{Name: "have-negative", JSON: `{"type":"have","swarm":"` + idS + `","blocks":[-1]}`, Error: "block index outside"},
	{Name: "have-float", JSON: `{"type":"have","swarm":"` + idS + `","blocks":[1.5]}`, Error: `field "blocks"`},
	{Name: "stats-negative", JSON: `{"type":"stats","swarm":"` + idS + `","bytesFromHttp":-1,"bytesFromPeers":0,"bytesUploaded":0}`, Error: "counters must be in"},
	{Name: "stats-too-big", JSON: `{"type":"stats","swarm":"` + idS + `","bytesFromHttp":9007199254740992,"bytesFromPeers":0,"bytesUploaded":0}`, Error: "counters must be in"},
	{Name: "report-bad-reason", JSON: `{"type":"report","swarm":"` + idS + `","peer":"` + idB + `","reason":"rude"}`, Error: "reason must be"},
	{Name: "welcome-ice-bad-scheme", JSON: `{"type":"welcome","version":1,"peer":"` + idA + `","loaded":false,"limits":{},"iceServers":[{"urls":["http://x"]}]}`, Error: "must start with stun:, stuns:, turn: or turns:"},
	{Name: "welcome-ice-no-urls", JSON: `{"type":"welcome","version":1,"peer":"` + idA + `","loaded":false,"limits":{},"iceServers":[{"urls":[]}]}`, Error: "urls must have 1 to 8 URLs"},
	{Name: "welcome-bad-upload", JSON: `{"type":"welcome","version":1,"peer":"` + idA + `","loaded":false,"limits":{},"iceServers":[],"upload":"sometimes"}`, Error: "upload must be"},
	{Name: "join-seed-not-bool", JSON: `{"type":"join","swarm":"` + idS + `","blocks":1,"bitfield":"gA==","seed":1}`, Error: `field "seed"`},
	{Name: "connection-bad-result", JSON: `{"type":"connection","swarm":"` + idS + `","peer":"` + idB + `","result":"maybe"}`, Error: "result must be"},
	{Name: "connection-no-path", JSON: `{"type":"connection","swarm":"` + idS + `","peer":"` + idB + `","result":"connected"}`, Error: "path must be"},
	{Name: "connection-failed-path", JSON: `{"type":"connection","swarm":"` + idS + `","peer":"` + idB + `","result":"failed","path":"relay"}`, Error: "a failed attempt has no path"},
	{Name: "received-bad-peer", JSON: `{"type":"received","swarm":"` + idS + `","peer":"x"}`, Error: "peer must be 64 lowercase hex"},
	{Name: "fetch-want-too-many", JSON: `{"type":"fetch","swarm":"` + idS + `","want":17}`, Error: "want must be in [0, 16]"},
	{Name: "fetch-claim-negative", JSON: `{"type":"fetch","swarm":"` + idS + `","want":1,"claim":[-1]}`, Error: "block index outside"},
	{Name: "assign-no-lease", JSON: `{"type":"assign","swarm":"` + idS + `","blocks":[1],"lease":0}`, Error: "lease must be in [1, 600000] ms"},
	{Name: "assign-empty", JSON: `{"type":"assign","swarm":"` + idS + `","blocks":[],"lease":8000}`, Error: "assign: no blocks"},
	{Name: "assign-too-many", JSON: `{"type":"assign","swarm":"` + idS + `","blocks":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],"lease":1}`, Error: "more than 16 blocks"},
	{Name: "release-empty", JSON: `{"type":"release","swarm":"` + idS + `","blocks":[]}`, Error: "release: no blocks"},
	{Name: "error-no-code", JSON: `{"type":"error","message":"x"}`, Error: "code must be"},
	{Name: "trailing-garbage", JSON: `{"type":"leave","swarm":"` + idS + `"} x`, Error: "not a JSON object"},
	{Name: "invalid-utf8", Base64: base64.StdEncoding.EncodeToString([]byte("{\"type\":\"hello\",\"group\":\"\xff\"}")), Error: "not valid UTF-8"},
}

func TestCoordinatorVectors(t *testing.T) {
	want := buildVectorFile(t)
	if *updateVectors {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(want); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsPath, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestCoordinatorVectors -update)", err)
	}
	var got coordinatorVectorFile
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Valid) != len(validCoordinatorCases) || len(got.Invalid) != len(invalidCoordinatorCases) {
		t.Fatalf("vector file has %d valid and %d invalid, Go cases %d and %d (run with -update)",
			len(got.Valid), len(got.Invalid), len(validCoordinatorCases), len(invalidCoordinatorCases))
	}
	seen := map[string]bool{}
	for i, v := range got.Valid {
		c := validCoordinatorCases[i]
		if v.Name != c.name {
			t.Fatalf("vector %d is %q, Go case is %q", i, v.Name, c.name)
		}
		seen[c.msg.CoordinatorType()] = true
		// Wire text → Go value.
		m, err := DecodeCoordinatorMessage([]byte(v.JSON))
		if err != nil {
			t.Errorf("%s: decode: %v", v.Name, err)
			continue
		}
		if !reflect.DeepEqual(m, c.msg) {
			t.Errorf("%s: decoded %#v, want %#v", v.Name, m, c.msg)
		}
		// Go value → exact wire text.
		enc, err := EncodeCoordinatorMessage(c.msg)
		if err != nil || string(enc) != v.JSON {
			t.Errorf("%s: encoded %s (%v), want %s", v.Name, enc, err, v.JSON)
		}
		// "value" is the same message as a JSON value.
		if !jsonEqual(t, v.Value, []byte(v.JSON)) {
			t.Errorf("%s: value %s differs from json %s", v.Name, v.Value, v.JSON)
		}
	}
	for _, typ := range []string{TypeHello, TypeWelcome, TypeJoin, TypeNeighbours, TypeSignal, TypeHave,
		TypeLeave, TypeStats, TypeReport, TypeConnection, TypeLoad, TypePeerLeft, TypeError} {
		if !seen[typ] {
			t.Errorf("no vector for %q", typ)
		}
	}
	for i, v := range got.Invalid {
		if v != invalidCoordinatorCases[i] {
			t.Fatalf("invalid vector %d differs from the Go case (run with -update)", i)
		}
		in := []byte(v.JSON)
		if v.Base64 != "" {
			in, _ = base64.StdEncoding.DecodeString(v.Base64)
		}
		_, err := DecodeCoordinatorMessage(in)
		if err == nil || !strings.Contains(err.Error(), v.Error) {
			t.Errorf("%s: error %v, want one containing %q", v.Name, err, v.Error)
		}
	}
}

func buildVectorFile(t *testing.T) coordinatorVectorFile {
	f := coordinatorVectorFile{
		Comment: "Coordinator message vectors (docs/PROTOCOL.md section 3). valid: json is the exact wire text, value the same message parsed. invalid: json (or base64 of raw bytes) must be refused with an error containing error. Generated by go test ./protocol -run TestCoordinatorVectors -update.",
		Version: CoordinatorVersion,
		Invalid: invalidCoordinatorCases,
	}
	for _, c := range validCoordinatorCases {
		enc, err := EncodeCoordinatorMessage(c.msg)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		f.Valid = append(f.Valid, coordinatorVector{Name: c.name, JSON: string(enc), Value: enc})
	}
	return f
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func TestDecodeCoordinatorMessageTooLarge(t *testing.T) {
	big := []byte(`{"type":"leave","swarm":"` + strings.Repeat(" ", MaxCoordinatorMessageSize) + `"}`)
	if _, err := DecodeCoordinatorMessage(big); err != ErrMessageTooLarge {
		t.Fatalf("got %v, want ErrMessageTooLarge", err)
	}
	// A bitfield past MaxBitfieldBytes is refused before base64 decoding.
	var b Bitfield
	huge := `"` + strings.Repeat("A", base64.StdEncoding.EncodedLen(MaxBitfieldBytes)+4) + `"`
	if err := b.UnmarshalJSON([]byte(huge)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("got %v", err)
	}
}

// An older server's welcome has no iceServers: it decodes to nil, which
// tells a client not to send connection reports; ours always sends the list.
func TestWelcomeICEServersPresence(t *testing.T) {
	m, err := DecodeCoordinatorMessage([]byte(`{"type":"welcome","version":1,"peer":"` + idA + `","loaded":false,"limits":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if w := m.(*Welcome); w.ICEServers != nil {
		t.Fatalf("an older welcome decoded with iceServers %#v", w.ICEServers)
	}
	b, err := EncodeCoordinatorMessage(&Welcome{Version: 1, Peer: idA})
	if err != nil || !strings.Contains(string(b), `"iceServers":[]`) {
		t.Fatalf("encoded %s (%v), want an empty iceServers list", b, err)
	}
}

func TestEncodeCoordinatorMessageRefusesInvalid(t *testing.T) {
	if _, err := EncodeCoordinatorMessage(&Leave{Swarm: "nope"}); err == nil {
		t.Fatal("encoded an invalid leave")
	}
	if _, err := EncodeCoordinatorMessage(nil); err == nil {
		t.Fatal("encoded nil")
	}
}

func TestBitfield(t *testing.T) {
	b := NewBitfield(10)
	b.Set(0)
	b.Set(9)
	b.Set(10) // out of range of the bytes? 10/8 = 1, still in byte 1: Check catches it
	if !b.Has(0) || !b.Has(9) || b.Has(1) || b.Has(-1) || b.Has(100) {
		t.Fatalf("Has wrong: %08b", b)
	}
	if b[0] != 0x80 || b[1] != 0x60 {
		t.Fatalf("not MSB-first: %08b", b)
	}
	if err := b.Check(10); err == nil {
		t.Fatal("spare bit 10 not caught")
	}
	other := Bitfield{0x80, 0x00}
	if n := b.CountMissing(other); n != 2 {
		t.Fatalf("CountMissing = %d", n)
	}
	if b.Count() != 3 {
		t.Fatalf("Count = %d", b.Count())
	}
}
