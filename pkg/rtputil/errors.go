package rtputil

import "errors"

// ErrShortPayload is returned when a payload ends before the header that
// describes it does.
var ErrShortPayload = errors.New("rtputil: payload too short")
