package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors a coordinator decoder returns for input that cannot be a message
// at all; the coordinator maps them to WebSocket close codes (1009, 1007).
var (
	ErrMessageTooLarge = errors.New("protocol: coordinator message larger than 64 KiB (192 KiB for join)")
	ErrInvalidUTF8     = errors.New("protocol: coordinator message is not valid UTF-8")
)

// EncodeCoordinatorMessage validates m and returns its wire text: a JSON
// object whose first field is "type". HTML characters are not escaped, to
// match what JSON.stringify produces in the browser.
func EncodeCoordinatorMessage(m CoordinatorMessage) ([]byte, error) {
	if m == nil {
		return nil, errors.New("protocol: nil coordinator message")
	}
	normalize(m)
	if w, ok := m.(*Welcome); ok && w.ICEServers == nil {
		// Always sent, even empty: its presence tells a client that this
		// server accepts connection reports.
		w.ICEServers = []ICEServer{}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", m.CoordinatorType(), err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// Splice "type" in front rather than carry a Type field in every struct,
	// so a struct can never disagree with its own type name.
	out := make([]byte, 0, len(body)+len(m.CoordinatorType())+12)
	out = append(out, `{"type":"`...)
	out = append(out, m.CoordinatorType()...)
	out = append(out, '"')
	if len(body) > 2 {
		out = append(out, ',')
	}
	out = append(out, body[1:]...)
	if len(out) > maxMessageSize(m.CoordinatorType()) {
		return nil, ErrMessageTooLarge
	}
	return out, nil
}

// maxMessageSize is the size limit of a message of type typ.
func maxMessageSize(typ string) int {
	if typ == TypeJoin {
		return MaxJoinMessageSize
	}
	return MaxCoordinatorMessageSize
}

// DecodeCoordinatorMessage parses and validates one coordinator message.
// Unknown fields are ignored so that a later minor revision may add some;
// an unknown type is an error.
func DecodeCoordinatorMessage(data []byte) (CoordinatorMessage, error) {
	if len(data) > MaxJoinMessageSize {
		return nil, ErrMessageTooLarge
	}
	if !utf8.Valid(data) {
		return nil, ErrInvalidUTF8
	}
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("protocol: not a JSON object: %s", describeJSONError(err))
	}
	if head.Type == nil {
		return nil, errors.New(`protocol: missing "type"`)
	}
	if len(data) > maxMessageSize(*head.Type) {
		return nil, ErrMessageTooLarge
	}
	m := newCoordinatorMessage(*head.Type)
	if m == nil {
		return nil, fmt.Errorf("protocol: unknown type %q", clip(*head.Type, 32))
	}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("protocol: %s: %s", *head.Type, describeJSONError(err))
	}
	normalize(m)
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// normalize turns absent lists into empty ones so that a message encodes
// the same whether its list was nil or empty.
func normalize(m CoordinatorMessage) {
	switch v := m.(type) {
	case *Neighbours:
		if v.Peers == nil {
			v.Peers = []Neighbour{}
		}
	case *Have:
		if v.Blocks == nil {
			v.Blocks = []int{}
		}

	case *Join:
		if v.Bitfield == nil {
			v.Bitfield = Bitfield{}
		}
	}
}

// describeJSONError names the field at fault without echoing input back.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type (%s)", clip(te.Field, 32), te.Value)
		}
		return fmt.Sprintf("wrong JSON type (%s)", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("JSON syntax error at offset %d", se.Offset)
	}
	return clip(err.Error(), 128)
}

// clip shortens s for inclusion in an error, so errors stay bounded.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
