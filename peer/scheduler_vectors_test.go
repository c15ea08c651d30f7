package peer

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
)

// schedulerVectors is protocol/testdata/scheduler_vectors.json, which
// client/test/unit.js runs against the JS scheduler too.
type schedulerVectors struct {
	Cases []struct {
		Name   string `json:"name"`
		Config struct {
			FirstBlocks    int   `json:"firstBlocks"`
			InitialWindow  int   `json:"initialWindow"`
			MaxWindow      int   `json:"maxWindow"`
			RequestTimeout int64 `json:"requestTimeout"`
			EndgameBlocks  int   `json:"endgameBlocks"`
			LoadedGrace    int64 `json:"loadedGrace"`
			LonelyGrace    int64 `json:"lonelyGrace"`
			MaxRejects     int   `json:"maxRejects"`
			Coordination   int64 `json:"coordinationGrace"`
			StarveGrace    int64 `json:"starveGrace"`
		} `json:"config"`
		Blocks int         `json:"blocks"`
		Done   []int       `json:"done"`
		Steps  []schedStep `json:"steps"`
	} `json:"cases"`
}

type schedStep struct {
	Op       string            `json:"op"`
	Peer     string            `json:"peer"`
	From     string            `json:"from"`
	Has      []int             `json:"has"`
	Block    int               `json:"block"`
	Reason   int               `json:"reason"`
	At       int64             `json:"at"`
	Value    bool              `json:"value"`
	Want     json.RawMessage   `json:"want"`
	OneOf    []json.RawMessage `json:"oneOf"`
	Count    *int              `json:"count"`
	Losers   []string          `json:"losers"`
	HTTPLost bool              `json:"httpLost"`
	Drop     bool              `json:"drop"`
}

func TestSchedulerVectors(t *testing.T) {
	raw, err := os.ReadFile("../protocol/testdata/scheduler_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vec schedulerVectors
	if err := json.Unmarshal(raw, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec.Cases) < 10 {
		t.Fatalf("only %d cases", len(vec.Cases))
	}
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	t0 := time.Unix(0, 0)
	for _, c := range vec.Cases {
		t.Run(c.Name, func(t *testing.T) {
			cfg := SchedulerConfig{FirstBlocks: c.Config.FirstBlocks, InitialWindow: c.Config.InitialWindow,
				MaxWindow: c.Config.MaxWindow, RequestTimeout: ms(c.Config.RequestTimeout),
				EndgameBlocks: c.Config.EndgameBlocks, LoadedGrace: ms(c.Config.LoadedGrace),
				LonelyGrace: ms(c.Config.LonelyGrace), MaxRejects: c.Config.MaxRejects,
				CoordinationGrace: ms(c.Config.Coordination), StarveGrace: ms(c.Config.StarveGrace)}
			done := make([]bool, c.Blocks)
			for _, i := range c.Done {
				done[i] = true
			}
			s := NewBlockScheduler(cfg, done, t0)
			last := map[string][]int{}
			for n, st := range c.Steps {
				at := t0.Add(ms(st.At))
				var got any
				switch st.Op {
				case "addPeer":
					has := make([]bool, c.Blocks)
					for _, i := range st.Has {
						has[i] = true
					}
					s.AddPeer(st.Peer, has)
				case "removePeer":
					s.RemovePeer(st.Peer)
				case "peerHas":
					s.PeerHas(st.Peer, st.Block)
				case "setLoaded":
					s.SetLoaded(st.Value)
				case "introduced":
					s.Introduced()
				case "httpFailed":
					s.HTTPFailed(st.Block)
				case "nextForPeer":
					b := s.NextForPeer(st.Peer, at)
					slices.Sort(b)
					last[st.Peer] = b
					got = b
				case "nextForHTTP":
					i, ok := s.NextForHTTP(at)
					if !ok {
						i = -1
					}
					got = i
				case "expire":
					var pairs [][]any
					for _, e := range s.Expire(at) {
						pairs = append(pairs, []any{e.Peer, e.Block})
					}
					got = pairs
				case "stalled":
					got = s.Stalled(at)
				case "rejected":
					if drop := s.Rejected(st.Peer, st.Block, protocol.RejectReason(st.Reason)); drop != st.Drop {
						t.Fatalf("step %d %s: drop %v, want %v", n, st.Op, drop, st.Drop)
					}
				case "completed", "completedLast":
					block := st.Block
					if st.Op == "completedLast" {
						block = last[st.From][0]
					}
					losers, httpLost := s.Completed(block, st.From, at)
					if st.Op == "completed" && (fmt.Sprint(losers) != fmt.Sprint(st.Losers) || httpLost != st.HTTPLost) {
						t.Fatalf("step %d %s: losers %v http %v, want %v %v", n, st.Op, losers, httpLost, st.Losers, st.HTTPLost)
					}
				case "done":
					got = s.Done()
				case "expectCoordination":
					s.ExpectCoordination()
				case "coordinate":
					s.Coordinate(st.Value)
				case "assigned":
					s.Assigned(st.Has)
				case "leased":
					l, q := s.Leased()
					got = []int{l, q}
				case "takeClaims":
					c := s.TakeClaims()
					slices.Sort(c)
					got = c
				default:
					t.Fatalf("step %d: unknown op %q", n, st.Op)
				}
				if got == nil && st.Op != "nextForPeer" && st.Op != "expire" && st.Op != "stalled" && st.Op != "takeClaims" {
					continue
				}
				checkSchedStep(t, n, st, got)
			}
		})
	}
}

// checkSchedStep compares an answer with want, oneOf or count.
func checkSchedStep(t *testing.T, n int, st schedStep, got any) {
	t.Helper()
	norm := func(v any) string { // JSON of the answer, empty lists as []
		b, _ := json.Marshal(v)
		if string(b) == "null" {
			return "[]"
		}
		return string(b)
	}
	canon := func(r json.RawMessage) string {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatalf("step %d: bad vector: %v", n, err)
		}
		return norm(v)
	}
	g := norm(got)
	switch {
	case st.Count != nil:
		k := 0
		switch v := got.(type) {
		case int:
			if v >= 0 {
				k = 1
			}
		default:
			k = reflect.ValueOf(v).Len()
		}
		if k != *st.Count {
			t.Fatalf("step %d %s: %s, want %d of them", n, st.Op, g, *st.Count)
		}
	case st.OneOf != nil:
		for _, o := range st.OneOf {
			if canon(o) == g {
				return
			}
		}
		t.Fatalf("step %d %s: %s, want one of %s", n, st.Op, g, norm(st.OneOf))
	case st.Want != nil:
		if w := canon(st.Want); w != g {
			t.Fatalf("step %d %s: %s, want %s", n, st.Op, g, w)
		}
	}
}
