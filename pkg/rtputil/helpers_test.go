package rtputil

// cat concatenates byte slices and single bytes into a new payload.
func cat(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			out = append(out, v)
		case int:
			out = append(out, byte(v))
		case []byte:
			out = append(out, v...)
		default:
			panic("cat: unsupported part")
		}
	}
	return out
}

// fill returns n bytes of filler that looks like nothing in particular.
func fill(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x55 + i*7)
	}
	return b
}

// bitWriter writes most-significant-bit-first bit fields, as the VP9 and
// AV1 bitstream specifications define them.
type bitWriter struct {
	buf  []byte
	bits int
}

func (w *bitWriter) put(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.bits%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>i&1 != 0 {
			w.buf[len(w.buf)-1] |= 0x80 >> (w.bits % 8)
		}
		w.bits++
	}
}
