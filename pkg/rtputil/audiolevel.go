package rtputil

// AudioLevelURI is the header extension URI of RFC 6464 client-to-mixer
// audio levels, as negotiated in SDP.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// AudioLevelSilence is the level of digital silence: 127 -dBov.
const AudioLevelSilence = 127

// AudioLevel parses the payload of an RFC 6464 client-to-mixer audio level
// header extension: one byte, V (voice activity) in the top bit and the level
// in -dBov in the other seven (0 is loudest, 127 silence). Bytes after the
// first (padding in the two-byte header form) are ignored. ok is false if ext
// is empty.
func AudioLevel(ext []byte) (level uint8, voice bool, ok bool) {
	if len(ext) < 1 {
		return 0, false, false
	}
	return ext[0] & 0x7f, ext[0]&0x80 != 0, true
}
