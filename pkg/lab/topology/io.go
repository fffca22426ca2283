package topology

import "io"

func ioLimit(r io.Reader) io.Reader { return io.LimitReader(r, MaxFileBytes+1) }
