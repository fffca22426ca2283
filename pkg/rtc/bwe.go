package rtc

import (
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
)

// bweFactory installs a send-side bandwidth estimator (GCC) on a PeerConnection. Unlike pion's
// cc interceptor it leaves streams alone whose subscriber did not negotiate transport-wide
// congestion control: GCC cannot estimate them and would refuse every packet.
type bweFactory struct {
	newEstimator func() (cc.BandwidthEstimator, error)
	onNew        func(cc.BandwidthEstimator)
}

func (f *bweFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	est, err := f.newEstimator()
	if err != nil {
		return nil, err
	}
	if f.onNew != nil {
		f.onNew(est)
	}
	return &bweInterceptor{est: est}, nil
}

type bweInterceptor struct {
	interceptor.NoOp
	est cc.BandwidthEstimator
}

// BindRTCPReader feeds transport-wide feedback to the estimator.
func (b *bweInterceptor) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(buf []byte, attrs interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attrs, err := reader.Read(buf, attrs)
		if err != nil {
			return 0, nil, err
		}
		if attrs == nil {
			attrs = make(interceptor.Attributes)
		}
		pkts, err := attrs.GetRTCPPackets(buf[:n])
		if err != nil {
			return 0, nil, err
		}
		if err := b.est.WriteRTCP(pkts, attrs); err != nil {
			return 0, nil, err
		}
		return n, attrs, nil
	})
}

// BindLocalStream routes a stream through the estimator when it carries transport-wide
// sequence numbers.
func (b *bweInterceptor) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == extTWCC {
			return b.est.AddStream(info, writer)
		}
	}
	return writer
}

func (b *bweInterceptor) Close() error { return b.est.Close() }
