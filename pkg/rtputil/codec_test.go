package rtputil

import "testing"

func TestCodecFromMime(t *testing.T) {
	tests := []struct {
		mime string
		want Codec
	}{
		{"audio/opus", CodecOpus},
		{"audio/OPUS", CodecOpus},
		{"video/VP8", CodecVP8},
		{"video/vp8", CodecVP8},
		{"VIDEO/VP9", CodecVP9},
		{"video/H264", CodecH264},
		{"video/h264", CodecH264},
		{"video/AV1", CodecAV1},
		{"video/H265", CodecH265},
		{"audio/G722", CodecG722},
		{"audio/PCMU", CodecPCMU},
		{"audio/pcma", CodecPCMA},
		{"", CodecUnknown},
		{"VP8", CodecUnknown},
		{"audio/VP8", CodecUnknown},
		{"video/opus", CodecUnknown},
		{"video/VP8 ", CodecUnknown},
		{"video/rtx", CodecUnknown},
		{"video/H266", CodecUnknown},
	}
	for _, tc := range tests {
		if got := CodecFromMime(tc.mime); got != tc.want {
			t.Errorf("CodecFromMime(%q) = %v, want %v", tc.mime, got, tc.want)
		}
	}
}

func TestCodecProperties(t *testing.T) {
	tests := []struct {
		c            Codec
		str, mime    string
		video, audio bool
	}{
		{CodecUnknown, "unknown", "", false, false},
		{CodecOpus, "opus", "audio/opus", false, true},
		{CodecVP8, "VP8", "video/VP8", true, false},
		{CodecVP9, "VP9", "video/VP9", true, false},
		{CodecH264, "H264", "video/H264", true, false},
		{CodecAV1, "AV1", "video/AV1", true, false},
		{CodecH265, "H265", "video/H265", true, false},
		{CodecG722, "G722", "audio/G722", false, true},
		{CodecPCMU, "PCMU", "audio/PCMU", false, true},
		{CodecPCMA, "PCMA", "audio/PCMA", false, true},
		{codecCount, "unknown", "", false, false},
		{255, "unknown", "", false, false},
	}
	for _, tc := range tests {
		if tc.c.String() != tc.str || tc.c.MimeType() != tc.mime || tc.c.IsVideo() != tc.video || tc.c.IsAudio() != tc.audio {
			t.Errorf("Codec(%d): String %q MimeType %q IsVideo %v IsAudio %v; want %q %q %v %v",
				tc.c, tc.c.String(), tc.c.MimeType(), tc.c.IsVideo(), tc.c.IsAudio(), tc.str, tc.mime, tc.video, tc.audio)
		}
		if tc.mime != "" && CodecFromMime(tc.mime) != tc.c {
			t.Errorf("CodecFromMime(%v.MimeType()) does not round-trip", tc.c)
		}
	}
}

func TestAudioLevel(t *testing.T) {
	tests := []struct {
		name      string
		ext       []byte
		level     uint8
		voice, ok bool
	}{
		{"empty", nil, 0, false, false},
		{"loudest with voice", []byte{0x80}, 0, true, true},
		{"silence", []byte{0x7f}, AudioLevelSilence, false, true},
		{"speech at -30 dBov", []byte{0x80 | 30}, 30, true, true},
		{"noise at -60 dBov", []byte{60}, 60, false, true},
		{"two-byte form padding ignored", []byte{0x80 | 45, 0x00}, 45, true, true},
	}
	for _, tc := range tests {
		level, voice, ok := AudioLevel(tc.ext)
		if level != tc.level || voice != tc.voice || ok != tc.ok {
			t.Errorf("%s: AudioLevel(% x) = %d, %v, %v; want %d, %v, %v",
				tc.name, tc.ext, level, voice, ok, tc.level, tc.voice, tc.ok)
		}
	}
}
