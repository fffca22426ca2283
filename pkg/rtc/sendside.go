package rtc

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc/bwe"
)

// senderReportInterval is how often a subscriber PeerConnection sends RTCP sender reports.
const senderReportInterval = time.Second

// sendSide does for a subscriber's PeerConnection what pion's send-side interceptors would
// (transport-wide sequence numbers, GCC, sender reports) without touching each packet's path
// through pion: the down tracks stamp transport-wide sequence numbers into their headers as
// they write (bwe.Sender.Stamp, no allocation), feedback is fed to the estimator from the RTCP
// readers, and a goroutine sends sender reports from the down tracks' counters.
type sendSide struct {
	cc     *bwe.Sender
	tracks func() []*room.DownTrack // the down tracks the PeerConnection sends now
	stop   chan struct{}
	wg     sync.WaitGroup
}

func newSendSide(cfg Config) *sendSide {
	return &sendSide{
		cc:   bwe.New(bwe.Config{Initial: cfg.InitialBitrate, Max: cfg.MaxBitrate}),
		stop: make(chan struct{}),
	}
}

// start sends sender reports on pc for tracks until close: on the own write path out once it
// is on (out may be nil), else through pion.
func (s *sendSide) start(pc *webrtc.PeerConnection, out *rtpOut, tracks func() []*room.DownTrack) {
	s.tracks = tracks
	s.wg.Add(1)
	go s.reportLoop(pc, out)
}

// close stops the sender reports and waits for the goroutine.
func (s *sendSide) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

// feedback feeds one transport-wide feedback packet to the estimator. It runs on the RTCP
// readers.
func (s *sendSide) feedback(raw []byte) { s.cc.FeedbackRaw(raw, time.Now()) }

func (s *sendSide) reportLoop(pc *webrtc.PeerConnection, out *rtpOut) {
	defer s.wg.Done()
	t := time.NewTicker(senderReportInterval)
	defer t.Stop()
	var pkts []rtcp.Packet
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			pkts = pkts[:0]
			for _, d := range s.tracks() {
				ssrc, rtpTime, packets, octets, ok := d.SenderReport(now)
				if !ok {
					continue
				}
				pkts = append(pkts, &rtcp.SenderReport{
					SSRC: ssrc, NTPTime: ntpTime(now), RTPTime: rtpTime, PacketCount: packets, OctetCount: octets,
				})
			}
			if len(pkts) == 0 {
				continue
			}
			if out != nil && out.enabled.Load() && out.writeRTCP(pkts) {
				continue
			}
			_ = pc.WriteRTCP(pkts) // fails only once the PeerConnection is closing
		}
	}
}

// ntpTime converts t to the 64-bit NTP format of sender reports.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800 // seconds from 1900 to 1970
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}
