package signal

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeEnvelope checks that DecodeEnvelope never panics, that what it accepts is a
// version 1 frame of a known type, and that an accepted envelope survives encoding and
// decoding again unchanged.
func FuzzDecodeEnvelope(f *testing.F) {
	seeds := []string{
		`{"v":1,"type":"join","id":"1","data":{"token":"eyJ.x.y","name":"Alice"}}`,
		`{"v":1,"type":"ping","data":{"ts":12345}}`,
		`{"v":1,"type":"offer","id":"c7","data":{"pc":"pub","sdp":"v=0\r\n","tracks":[{"id":"a","source":"camera"}]}}`,
		`{"v":1,"type":"data","data":{"topic":"player","payload":{"action":"play","at":12.5}}}`,
		`{"v":1,"type":"candidate","data":{"pc":"sub","candidate":null}}`,
		`{"v":1,"type":"leave","data":null}`,
		`{"v":1,"type":"chat","data":{"text":"<b>&amp;</b>"}}`,
		`{"v":2,"type":"ping"}`,
		`{"v":1,"type":"frobnicate"}`,
		`{"v":1,"type":"ping","id":"x` + strings.Repeat("é", 40) + `"}`,
		`{"V":1,"TYPE":"ping","Id":"x"}`,
		`{"v":1.0,"type":"ping"}`,
		`{"v":"1","type":"ping"}`,
		`{"v":1,"type":"ping","v":2}`,
		`[1,2,3]`,
		`null`,
		`{`,
		``,
		"\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, perr := DecodeEnvelope(data)
		if len(env.ID) > maxRequestID || len(env.Type) > 64 {
			t.Fatalf("id (%d bytes) or type (%d bytes) over the limit", len(env.ID), len(env.Type))
		}
		if perr != nil {
			if perr.Code == "" || perr.Message == "" {
				t.Fatalf("error without code or message: %#v", perr)
			}
			return
		}
		if env.V != ProtocolVersion {
			t.Fatalf("accepted version %d", env.V)
		}
		if handlerFor(env.Type) == nil {
			t.Fatalf("accepted unknown type %q", env.Type)
		}
		enc, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("cannot re-encode an accepted envelope: %v", err)
		}
		if len(enc) > MaxFrameSize {
			return // escaping grew it over the frame limit; nothing to compare
		}
		again, perr := DecodeEnvelope(enc)
		if perr != nil {
			t.Fatalf("re-encoded envelope rejected: %v\n%s", perr, enc)
		}
		if again.V != env.V || again.Type != env.Type || again.ID != env.ID {
			t.Fatalf("round trip changed the envelope: %+v became %+v", env, again)
		}
		enc2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the payload:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzParseSDPFrag checks that parseSDPFrag never panics, never returns more than 64
// candidates, and returns only candidate lines, each with a mid or an m-line index.
func FuzzParseSDPFrag(f *testing.F) {
	f.Add("a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n" +
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
		"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
		"a=end-of-candidates\r\n")
	f.Add("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\n")
	f.Add("a=mid:\na=candidate:\n")
	f.Add(strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 65))
	f.Add("")
	f.Add("\r\n\r\n\x00")
	f.Fuzz(func(t *testing.T, frag string) {
		cands, _, perr := parseSDPFrag(frag)
		if perr != nil {
			if perr.Code != CodeTooLarge {
				t.Fatalf("unexpected error %v", perr)
			}
			return
		}
		if len(cands) > 64 {
			t.Fatalf("%d candidates, limit is 64", len(cands))
		}
		for _, c := range cands {
			if !strings.HasPrefix(c.Candidate, "candidate:") {
				t.Fatalf("candidate %q does not start with candidate:", c.Candidate)
			}
			if c.SDPMid == nil && c.SDPMLineIndex == nil {
				t.Fatalf("candidate %q has neither mid nor m-line index", c.Candidate)
			}
		}
	})
}
