package peer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/p2pxhr/p2pxhr/protocol"
	"github.com/pion/webrtc/v4"
)

const benchSize = 32 << 20

// BenchmarkPeerBlockTransfer moves benchSize bytes from a Go seeder to a Go
// getter: manifest, signalling, hello, requests, 16 KiB pieces, SHA-256
// verification and writes included. The origin trickles at 64 KiB/s so the
// bytes come from the peer.
func BenchmarkPeerBlockTransfer(b *testing.B) {
	data := randomBytes(benchSize)
	v := newVersion(b, data, `"v1"`)
	b.SetBytes(benchSize)
	var fromPeers int64
	for b.Loop() {
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			o := newBenchOrigin(b, v)
			hub := NewMemHub()
			seeder, _ := New(Options{Signaller: hub.Connect("s"), RTC: RTCConfig{Loopback: true}})
			defer seeder.Close()
			getter, _ := New(Options{Signaller: hub.Connect("g"), RTC: RTCConfig{Loopback: true}})
			defer getter.Close()
			sctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); seeder.Seed(sctx, o.url(), readerAt(data)) }()
			defer func() { stop(); wg.Wait() }()
			// Wait (bounded) for the seeder to join, so the getter meets it.
			id := mustManifest(v).ID
			for i := 0; seeder.swarm(id) == nil; i++ {
				if i == 5000 {
					b.Fatal("seeder did not join")
				}
				time.Sleep(time.Millisecond)
			}
			var dst MemFile
			res, err := getter.Download(ctx, o.url(), &dst)
			if err != nil {
				b.Fatal(err)
			}
			fromPeers += res.BytesFromPeers
		}()
	}
	b.ReportMetric(float64(fromPeers)/float64(b.N)/benchSize, "peer-share")
}

// BenchmarkRawDataChannel moves the same bytes over one raw pion
// DataChannel with the same settings, 16 KiB messages and the same
// buffered-amount flow control: the ceiling the peer is measured against.
// Only the transfer is timed, not the connection set-up, so the ceiling is
// as high as it can be (the peer benchmark pays for its set-up).
func BenchmarkRawDataChannel(b *testing.B) {
	b.SetBytes(benchSize)
	for b.Loop() {
		rawTransfer(b)
	}
}

func rawTransfer(b *testing.B) {
	b.StopTimer()
	sa, err := newRTCStack(RTCConfig{Loopback: true})
	if err != nil {
		b.Fatal(err)
	}
	defer sa.close()
	sb, err := newRTCStack(RTCConfig{Loopback: true})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.close()
	pa, _ := sa.newPeerConnection(nil)
	defer pa.Close()
	pb, _ := sb.newPeerConnection(nil)
	defer pb.Close()

	got := make(chan struct{})
	pb.OnDataChannel(func(dc *webrtc.DataChannel) {
		n := 0
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if n += len(m.Data); n == benchSize {
				close(got)
			}
		})
	})
	dc, _ := pa.CreateDataChannel("raw", nil)
	low := make(chan struct{}, 1)
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case low <- struct{}{}:
		default:
		}
	})
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })

	offer, _ := pa.CreateOffer(nil)
	ga := webrtc.GatheringCompletePromise(pa)
	pa.SetLocalDescription(offer)
	<-ga
	pb.SetRemoteDescription(*pa.LocalDescription())
	ans, _ := pb.CreateAnswer(nil)
	gb := webrtc.GatheringCompletePromise(pb)
	pb.SetLocalDescription(ans)
	<-gb
	pa.SetRemoteDescription(*pb.LocalDescription())
	<-opened
	b.StartTimer()

	msg := make([]byte, protocol.MaxPieceData)
	for sent := 0; sent < benchSize; sent += len(msg) {
		for dc.BufferedAmount() > highWater {
			<-low
		}
		if err := dc.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-got:
	case <-time.After(60 * time.Second):
		b.Fatal("raw transfer timed out")
	}
	b.StopTimer() // closing (deferred above) is not part of the transfer
	defer b.StartTimer()
}
