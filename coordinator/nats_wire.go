package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// Kinds of envelope on a node's inbox subject (docs/PROTOCOL.md §5.2).
const (
	wireSwarm = "swarm" // a peer's swarm-bound message, for the swarm's owner
	wirePeer  = "peer"  // a delivery to a peer whose connection is on this node
	wireState = "state" // a member's state, for a swarm's (new) owner
)

// wireMsg is one Message (or member state) between nodes, as JSON. Body
// is the coordinator message exactly as a client would see it.
type wireMsg struct {
	Kind  string          `json:"k"`
	To    string          `json:"to,omitempty"`
	Swarm string          `json:"swarm,omitempty"`
	From  string          `json:"from,omitempty"`
	Net   string          `json:"net,omitempty"`
	Group string          `json:"group,omitempty"`
	Node  string          `json:"node"`
	Hops  int             `json:"hops,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
	State *memberState    `json:"state,omitempty"`
}

func encodeWire(kind string, m Message, hops int) ([]byte, error) {
	body, err := protocol.EncodeCoordinatorMessage(m.Body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireMsg{Kind: kind, To: m.To, Swarm: m.Swarm, From: m.From, Net: m.Net,
		Group: m.Group, Node: m.Node, Hops: hops, Body: body})
}

func encodeState(swarm, node string, st *memberState, hops int) ([]byte, error) {
	return json.Marshal(wireMsg{Kind: wireState, Swarm: swarm, Node: node, Hops: hops, State: st})
}

// decodeWire parses an envelope; for swarm and peer kinds the body is
// decoded and validated as a coordinator message.
func decodeWire(data []byte) (*wireMsg, Message, error) {
	var w wireMsg
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, Message{}, fmt.Errorf("backplane envelope: %w", err)
	}
	m := Message{To: w.To, Swarm: w.Swarm, From: w.From, Net: w.Net, Group: w.Group, Node: w.Node}
	switch w.Kind {
	case wireSwarm, wirePeer:
		body, err := protocol.DecodeCoordinatorMessage(w.Body)
		if err != nil {
			return nil, m, fmt.Errorf("backplane %s body: %w", w.Kind, err)
		}
		m.Body = body
	case wireState:
		if w.State == nil || w.Swarm == "" {
			return nil, m, errors.New("backplane state without a member")
		}
	default:
		return nil, m, fmt.Errorf("backplane envelope of unknown kind %q", w.Kind)
	}
	return &w, m, nil
}

// heartbeat is what a node publishes on the heartbeat subject every
// interval: it is alive, and its counts for the cluster's stats.
type heartbeat struct {
	Node string `json:"node"`
	// Boot changes when the node's process (and its swarm state) does, so
	// a node restarted under the same id is not taken for the old one.
	Boot string `json:"boot"`
	// Hello: the node has just started or reconnected; every node answers
	// with a heartbeat and sends it the states of its members in swarms
	// the node owns.
	Hello bool `json:"hello,omitempty"`
	// Bye: the node is closing; drop it now rather than after the TTL.
	Bye   bool      `json:"bye,omitempty"`
	Stats NodeStats `json:"stats"`
}
