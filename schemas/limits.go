package schemas

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrOutOfRange marks a TraceItem whose values are well-formed but outside
// what taillight stores exactly (Limits). Errors wrapping it are
// *FieldError values naming the field.
var ErrOutOfRange = errors.New("value out of range")

// ErrItemTooLarge marks an item over MaxItemBytes in a batch (Reader).
var ErrItemTooLarge = errors.New("item too large")

// FieldError is a value refused by Limits.Check: Field is its JSON path
// (event.response.status, logs[2].level…) and Reason says why, without
// quoting the value (it may hold a secret, and it is stored nowhere). It
// wraps ErrOutOfRange.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func (e *FieldError) Unwrap() error { return ErrOutOfRange }

// Limits are the value ranges a TraceItem must respect to be stored. Ingest
// refuses an item outside them (400 naming the item and the field); the
// processor sends it to the dead-letter topic with the reason. Both read
// the same flags (RegisterFlags), so what one accepts the other stores.
//
// Out of range, a value would otherwise be clamped or wrapped by its column
// (a status of 70000 stored as 0, an eventTimestamp in the year 3000 wrapped
// to 2047) or break the dashboards (a 100 KB script name in a legend).
type Limits struct {
	// MinEventTime and MaxEventAhead bound eventTimestamp (when not null):
	// from MinEventTime (default 2015-01-01, before Workers existed) to
	// now + MaxEventAhead (default 24h, for clock skew).
	MinEventTime  time.Time
	MaxEventAhead time.Duration
	// MaxCPUTimeMs and MaxWallTimeMs bound cpuTime and wallTime
	// (milliseconds; defaults 1 hour and 7 days; at most 2^32-1, the
	// column's range).
	MaxCPUTimeMs  float64
	MaxWallTimeMs float64
	// MaxNameBytes bounds scriptName, entrypoint, dispatchNamespace,
	// durableObjectId, scriptVersion id and tag, executionModel, the
	// request method, and log levels (default 256).
	MaxNameBytes int
	// MaxOutcomeBytes bounds outcome (default 64; the runtime's longest is
	// 26 bytes).
	MaxOutcomeBytes int
	// MaxURLBytes bounds event.request.url (default 16384, Cloudflare's own
	// limit); its host is also bounded at 253 bytes (DNS).
	MaxURLBytes int
}

// Limit defaults.
var (
	DefaultMinEventTime = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	DefaultMaxEventAhead   = 24 * time.Hour
	DefaultMaxCPUTimeMs    = 3_600_000
	DefaultMaxWallTimeMs   = 7 * 24 * 3_600_000
	DefaultMaxNameBytes    = 256
	DefaultMaxOutcomeBytes = 64
	DefaultMaxURLBytes     = 16384
	// MinStatus and MaxStatus bound event.response.status; 0 (or no
	// response) means none.
	MinStatus    = 100
	MaxStatus    = 599
	maxHostBytes = 253
)

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		MinEventTime:    DefaultMinEventTime,
		MaxEventAhead:   DefaultMaxEventAhead,
		MaxCPUTimeMs:    DefaultMaxCPUTimeMs,
		MaxWallTimeMs:   DefaultMaxWallTimeMs,
		MaxNameBytes:    DefaultMaxNameBytes,
		MaxOutcomeBytes: DefaultMaxOutcomeBytes,
		MaxURLBytes:     DefaultMaxURLBytes,
	}
}

// RegisterFlags registers l's fields as flags named
// prefix+"min-event-time" and so on (prefix "limits." gives
// -limits.min-event-time). The values in l are the defaults (start from
// DefaultLimits); it changes no field.
func (l *Limits) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.Func(prefix+"min-event-time", "oldest eventTimestamp accepted, RFC 3339 or YYYY-MM-DD (default 2015-01-01)", func(s string) error {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t, err = time.Parse(time.DateOnly, s)
		}
		if err != nil {
			return errors.New("want RFC 3339 (2015-01-01T00:00:00Z) or a date (2015-01-01)")
		}
		l.MinEventTime = t
		return nil
	})
	fs.DurationVar(&l.MaxEventAhead, prefix+"max-event-ahead", l.MaxEventAhead, "how far past now an eventTimestamp may be")
	fs.Float64Var(&l.MaxCPUTimeMs, prefix+"max-cpu-time", l.MaxCPUTimeMs, "largest cpuTime accepted, milliseconds")
	fs.Float64Var(&l.MaxWallTimeMs, prefix+"max-wall-time", l.MaxWallTimeMs, "largest wallTime accepted, milliseconds")
	fs.IntVar(&l.MaxNameBytes, prefix+"max-name-bytes", l.MaxNameBytes, "longest scriptName, entrypoint, dispatchNamespace, durableObjectId, script version, executionModel, method or log level")
	fs.IntVar(&l.MaxOutcomeBytes, prefix+"max-outcome-bytes", l.MaxOutcomeBytes, "longest outcome")
	fs.IntVar(&l.MaxURLBytes, prefix+"max-url-bytes", l.MaxURLBytes, "longest event.request.url")
}

// Validate reports the first problem with l.
func (l *Limits) Validate() error {
	switch {
	case l.MinEventTime.UnixMilli() < 0:
		return fmt.Errorf("limits: min event time %s must not be before 1970", l.MinEventTime.Format(time.RFC3339))
	case l.MaxEventAhead < 0:
		return fmt.Errorf("limits: max event ahead (%s) must not be negative", l.MaxEventAhead)
	case !(l.MaxCPUTimeMs > 0 && l.MaxCPUTimeMs <= math.MaxUint32) || !(l.MaxWallTimeMs > 0 && l.MaxWallTimeMs <= math.MaxUint32):
		return fmt.Errorf("limits: max cpu time (%g) and max wall time (%g) must be in 1..%d ms", l.MaxCPUTimeMs, l.MaxWallTimeMs, uint32(math.MaxUint32))
	case l.MaxNameBytes <= 0 || l.MaxOutcomeBytes <= 0 || l.MaxURLBytes <= 0:
		return fmt.Errorf("limits: max name (%d), outcome (%d) and URL (%d) bytes must be positive", l.MaxNameBytes, l.MaxOutcomeBytes, l.MaxURLBytes)
	}
	return nil
}

// Check reports the first value of t outside l, as a *FieldError, with now
// as the reference for MaxEventAhead. A zero Limits checks nothing but the
// status range; it allocates only for the error.
func (l *Limits) Check(t *TraceItem, now time.Time) error {
	if ts := t.EventTimestamp; ts != nil {
		if !l.MinEventTime.IsZero() && *ts < l.MinEventTime.UnixMilli() {
			return &FieldError{"eventTimestamp", "before " + l.MinEventTime.UTC().Format(time.RFC3339) + " (-limits.min-event-time)"}
		}
		if l.MaxEventAhead > 0 && *ts > now.Add(l.MaxEventAhead).UnixMilli() {
			return &FieldError{"eventTimestamp", "more than " + l.MaxEventAhead.String() + " ahead of now (-limits.max-event-ahead)"}
		}
		if *ts/1000 > math.MaxUint32 {
			// event_time is a DateTime: seconds up to 2106.
			return &FieldError{"eventTimestamp", "after 2106"}
		}
	}
	if l.MaxCPUTimeMs > 0 && !(t.CPUTime <= l.MaxCPUTimeMs) {
		return &FieldError{"cpuTime", fmt.Sprintf("over %.0f ms (-limits.max-cpu-time)", l.MaxCPUTimeMs)}
	}
	if l.MaxWallTimeMs > 0 && !(t.WallTime <= l.MaxWallTimeMs) {
		return &FieldError{"wallTime", fmt.Sprintf("over %.0f ms (-limits.max-wall-time)", l.MaxWallTimeMs)}
	}
	if l.MaxOutcomeBytes > 0 && len(t.Outcome) > l.MaxOutcomeBytes {
		return tooLong("outcome", len(t.Outcome), l.MaxOutcomeBytes, "max-outcome-bytes")
	}
	if n := l.MaxNameBytes; n > 0 {
		if t.ScriptName != nil && len(*t.ScriptName) > n {
			return tooLong("scriptName", len(*t.ScriptName), n, "max-name-bytes")
		}
		for _, f := range [...]struct {
			name, v string
		}{
			{"entrypoint", t.Entrypoint}, {"dispatchNamespace", t.DispatchNamespace},
			{"durableObjectId", t.DurableObjectID}, {"executionModel", t.ExecutionModel},
		} {
			if len(f.v) > n {
				return tooLong(f.name, len(f.v), n, "max-name-bytes")
			}
		}
		if v := t.ScriptVersion; v != nil {
			if len(v.ID) > n {
				return tooLong("scriptVersion.id", len(v.ID), n, "max-name-bytes")
			}
			if len(v.Tag) > n {
				return tooLong("scriptVersion.tag", len(v.Tag), n, "max-name-bytes")
			}
		}
		if e := t.Event; e != nil && e.Request != nil && len(e.Request.Method) > n {
			return tooLong("event.request.method", len(e.Request.Method), n, "max-name-bytes")
		}
		for i := range t.Logs {
			if len(t.Logs[i].Level) > n {
				return tooLong(fmt.Sprintf("logs[%d].level", i), len(t.Logs[i].Level), n, "max-name-bytes")
			}
		}
	}
	if e := t.Event; e != nil {
		if q := e.Request; q != nil && l.MaxURLBytes > 0 {
			if len(q.URL) > l.MaxURLBytes {
				return tooLong("event.request.url", len(q.URL), l.MaxURLBytes, "max-url-bytes")
			}
			if h := urlHost(q.URL); len(h) > maxHostBytes {
				return &FieldError{"event.request.url", fmt.Sprintf("host of %d bytes is longer than %d", len(h), maxHostBytes)}
			}
		}
		if r := e.Response; r != nil && r.Status != 0 && (r.Status < MinStatus || r.Status > MaxStatus) {
			return &FieldError{"event.response.status", fmt.Sprintf("outside %d..%d", MinStatus, MaxStatus)}
		}
	}
	return nil
}

func tooLong(field string, n, max int, flagName string) error {
	return &FieldError{field, fmt.Sprintf("%d bytes is longer than %d (-limits.%s)", n, max, flagName)}
}

// urlHost returns the authority of u (after "scheme://", up to the path,
// query or fragment), or "" when u has none.
func urlHost(u string) string {
	i := strings.Index(u, "://")
	if i < 0 {
		return ""
	}
	h := u[i+3:]
	if j := strings.IndexAny(h, "/?#"); j >= 0 {
		h = h[:j]
	}
	return h
}

// checkUTF8 refuses b when it is not valid UTF-8. JSON text must be UTF-8
// (RFC 8259) and the Workers runtime always sends it; a decoder would turn
// invalid bytes into U+FFFD in strings but keep them in raw fields (log
// messages), so an item is refused whole instead. Escaped lone surrogates
// (\ud800) are valid JSON and accepted.
func checkUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	i := 0
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	return fmt.Errorf("%w: invalid UTF-8 at byte %d of the item (JSON must be UTF-8)", ErrInvalid, i)
}
