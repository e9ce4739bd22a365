package observe

import (
	"sync/atomic"
	"time"
)

// secondText is how the access log writes one second of one location: the date and
// time up to the seconds ("2006-01-02T15:04:05") and the zone ("Z" or "-07:00").
type secondText struct {
	unix   int64
	loc    *time.Location
	prefix []byte
	zone   []byte
}

// lastSecond is the text of the second of the latest line, shared by every access
// log: lines come many to a second, and formatting the date costs more than the
// rest of the time does.
var lastSecond atomic.Pointer[secondText]

// appendTime appends t as time.RFC3339Nano formats it: the second's text, formatted
// once per second and location, then the nanoseconds without their trailing zeros
// (none at all for a whole second), then the zone.
func appendTime(b []byte, t time.Time) []byte {
	unix, loc := t.Unix(), t.Location()
	st := lastSecond.Load()
	if st == nil || st.unix != unix || st.loc != loc {
		whole := t.Truncate(time.Second)
		st = &secondText{unix: unix, loc: loc,
			prefix: whole.AppendFormat(nil, "2006-01-02T15:04:05"), zone: whole.AppendFormat(nil, "Z07:00")}
		lastSecond.Store(st)
	}
	b = append(b, st.prefix...)
	b = appendNanos(b, t.Nanosecond())
	return append(b, st.zone...)
}

// appendNanos appends the fraction of a second of ns nanoseconds as RFC3339Nano
// does: a dot and up to nine digits without trailing zeros, nothing when ns is zero.
// The digits are written in three groups of three, each from a table.
func appendNanos(b []byte, ns int) []byte {
	if ns == 0 {
		return b
	}
	millis, micros, nanos := ns/1e6, ns/1e3%1000, ns%1000
	b = append(b, '.')
	switch {
	case nanos != 0:
		b = append(b, threeDigits[3*millis:3*millis+3]...)
		b = append(b, threeDigits[3*micros:3*micros+3]...)
		return append(b, thousandths(nanos)...)
	case micros != 0:
		b = append(b, threeDigits[3*millis:3*millis+3]...)
		return append(b, thousandths(micros)...)
	default:
		return append(b, thousandths(millis)...)
	}
}
