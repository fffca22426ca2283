package vnet

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// wan is pion's virtual network: one router for 198.51.100.0/24 that holds every packet for
// oneWay before delivering it. Nodes and clients are hosts on it, so every hop (client to
// node, node to node, node to client) takes at least oneWay. A host can be cut off: its
// packets are then dropped both ways, as if its machine had vanished.
type wan struct {
	router *vnet.Router
	oneWay time.Duration

	mu  sync.Mutex // guards the fields below
	cut map[string]bool
}

func newWAN(t *testing.T, oneWay time.Duration) *wan {
	t.Helper()
	router, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", MinDelay: oneWay, LoggerFactory: quietPion()})
	if err != nil {
		t.Fatal(err)
	}
	w := &wan{router: router, oneWay: oneWay, cut: map[string]bool{}}
	router.AddChunkFilter(w.pass)
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Stop() })
	return w
}

// host adds a machine with address ip (198.51.100.x) to the network.
func (w *wan) host(t *testing.T, ip string) *vnet.Net {
	t.Helper()
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.router.AddNet(n); err != nil {
		t.Fatal(err)
	}
	return n
}

// cutOff drops every later packet from or to ip.
func (w *wan) cutOff(ip string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cut[ip] = true
}

// pass is the router's chunk filter: false drops the packet. It runs under the router's lock.
func (w *wan) pass(c vnet.Chunk) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.cut[hostOf(c.SourceAddr())] && !w.cut[hostOf(c.DestinationAddr())]
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// clientAPI builds the pion API of a client machine on the virtual network, with pion's
// default codecs and interceptors (NACK, RTCP reports, TWCC), as a browser would have.
func clientAPI(t *testing.T, host *vnet.Net) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: rtc.ExtAbsCaptureTime}, k); err != nil {
			t.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{LoggerFactory: quietPion()}
	se.SetNet(host)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func quietPion() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}
