package schemas

import (
	"encoding/binary"
	stdjson "encoding/json"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// fastDecode is a hand-written decoder for the common shape of a TraceItem.
// It accepts a strict subset of what segmentio accepts and gives the same
// TraceItem; on anything else (escaped keys, duplicate keys, nulls where
// the runtime sends none, numbers that need conversion, invalid UTF-8,
// syntax errors) it reports false and the caller decodes with segmentio,
// which also produces the error messages. Strings, headers and raw JSON
// alias b. It avoids segmentio's reflection and the pre-scan of values
// handed to custom unmarshalers.
func fastDecode(b []byte, t *TraceItem) bool { return fastDecodeInto(b, t, nil) }

// fastDecodeInto is fastDecode taking the item's pointed-to parts from re
// when it is not nil.
func fastDecodeInto(b []byte, t *TraceItem, re *Decoder) bool {
	if !utf8.Valid(b) {
		return false
	}
	d := fdec{b: b, re: re}
	i := d.ws(0)
	i, ok := d.traceItem(i, t)
	return ok && d.ws(i) == len(b)
}

type fdec struct {
	b     []byte
	depth int
	re    *Decoder // nil: allocate
}

// ws is skipWS, testing first for the compact JSON the runtime sends.
func (d *fdec) ws(i int) int {
	if i < len(d.b) && d.b[i] > ' ' {
		return i
	}
	return skipWS(d.b, i)
}

// object walks an object starting at b[i] == '{'. It decodes the member
// that keys numbers n into dst[n] (see value), hands any other member to
// other (nil: skip it) and fails on a repeated known member. Funcs that
// decode a member go in other, not dst: what dst holds leaks to the heap.
func (d *fdec) object(i int, keys *keySet, other func(key string, i int) (int, bool), dst ...any) (int, bool) {
	b := d.b
	i, more := d.open(i, '{', '}')
	var seen uint64
	for more {
		key, next, ok := d.rawString(i)
		if !ok {
			return 0, false
		}
		i = d.ws(next)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = d.ws(i + 1)
		n := -1
		if keys != nil {
			n = keys.find(key)
		}
		if n >= 0 {
			if seen&(1<<n) != 0 {
				return 0, false
			}
			seen |= 1 << n
		}
		switch {
		case n >= 0 && n < len(dst):
			if p, isStr := dst[n].(*string); isStr { // the most common
				i, ok = d.str(i, p)
			} else {
				i, ok = d.value(i, dst[n])
			}
		case other != nil:
			i, ok = other(key, i)
		default:
			i, ok = d.skip(i)
		}
		i, more = d.next(i, ok, '}')
	}
	return i, i > 0
}

// array walks an array starting at b[i] == '[', calling elem at each element.
func (d *fdec) array(i int, elem func(i int) (int, bool)) (int, bool) {
	i, more := d.open(i, '[', ']')
	for more {
		var ok bool
		i, ok = elem(i)
		i, more = d.next(i, ok, ']')
	}
	return i, i > 0
}

// open steps into the object or array at b[i] == start, to its first
// member (more) or past its end when it is empty; j is 0 when b[i] is not
// start.
func (d *fdec) open(i int, start, end byte) (j int, more bool) {
	if i >= len(d.b) || d.b[i] != start {
		return 0, false
	}
	i = d.ws(i + 1)
	if i < len(d.b) && d.b[i] == end {
		return i + 1, false
	}
	return i, true
}

// next steps from the end of a member at i, decoded when ok, to the next
// member (more) or past the closing end; j is 0 on a syntax error.
func (d *fdec) next(i int, ok bool, end byte) (j int, more bool) {
	if !ok {
		return 0, false
	}
	i = d.ws(i)
	if i < len(d.b) && d.b[i] == ',' {
		return d.ws(i + 1), true
	}
	if i < len(d.b) && d.b[i] == end {
		return i + 1, false
	}
	return 0, false
}

// keySet numbers an object's known member names, finding a key with one
// string compare at its slot in a small perfect hash: a scan of the names,
// comparing each, costs about 4 % more per typical item.
type keySet struct {
	names [64]string // at their slots
	nums  [64]int8
	mul   uint // makes the names' slots distinct
}

func newKeySet(names ...string) *keySet {
	for mul := uint(1); mul < 1000; mul++ {
		s := &keySet{mul: mul}
		for n, name := range names {
			h := s.slot(name)
			if s.names[h] != "" {
				break
			}
			s.names[h], s.nums[h] = name, int8(n)
			if n == len(names)-1 {
				return s
			}
		}
	}
	panic("fastdecode: no perfect hash for " + strings.Join(names, ","))
}

// slot hashes a non-empty key.
func (s *keySet) slot(k string) uint {
	return (uint(len(k))*s.mul + uint(k[0])*7 + uint(k[len(k)-1])) % uint(len(s.names))
}

// find returns key's number, or -1.
func (s *keySet) find(key string) int {
	if key == "" {
		return -1
	}
	h := s.slot(key)
	if s.names[h] != key {
		return -1
	}
	return int(s.nums[h])
}

// value decodes the value at b[i] into dst, a pointer to a field or to a
// pointer field it allocates; object decodes *string itself.
func (d *fdec) value(i int, dst any) (int, bool) {
	switch p := dst.(type) {
	case **string:
		return d.strPtr(i, p)
	case *int64:
		return d.int64v(i, p)
	case **int64:
		*p = new(int64)
		return d.int64v(i, *p)
	case *int:
		v, end, ok := d.intNum(i, strconv.IntSize)
		*p = int(v)
		return end, ok
	case **int:
		*p = new(int)
		return d.value(i, *p)
	case *float64:
		return d.float(i, p)
	case *bool:
		return d.boolv(i, p)
	case **bool:
		*p = new(bool)
		return d.boolv(i, *p)
	case *json.RawMessage:
		return d.raw(i, p)
	case *Headers:
		return d.headers(i, p)
	case *[]string:
		return list(d, i, p, d.str)
	case *[]Exception:
		return list(d, i, p, d.exception)
	case *[]DiagnosticEvent:
		return list(d, i, p, d.diagnostic)
	case *[]TailConsumedEvent:
		return list(d, i, p, d.consumed)
	}
	panic("fastdecode: no decoder for a destination")
}

// list decodes an array into a new slice, [] giving an empty one.
func list[T any](d *fdec, i int, s *[]T, elem func(int, *T) (int, bool)) (int, bool) {
	*s = []T{}
	return appendEach(d, i, s, elem)
}

// appendEach decodes an array's elements onto the end of *s.
func appendEach[T any](d *fdec, i int, s *[]T, elem func(int, *T) (int, bool)) (int, bool) {
	return d.array(i, func(i int) (int, bool) {
		var zero T
		*s = append(*s, zero)
		return elem(i, &(*s)[len(*s)-1])
	})
}

// rawString returns an unescaped string without control characters.
func (d *fdec) rawString(i int) (string, int, bool) {
	b := d.b
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	j := plainRun(b, i+1)
	if j < len(b) && b[j] == '"' {
		return bytesString(b[i+1 : j]), j + 1, true
	}
	return "", 0, false
}

// Byte masks for plainRun's word-at-a-time test.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun returns the index of the first byte of b from j on that ends a
// run of plain string bytes (a quote, a backslash or a control byte), or
// len(b). It tests 8 bytes at a time: strings (URLs, stacks, log lines)
// are most of a record's bytes, and a byte loop was the decoder's hottest.
func plainRun(b []byte, j int) int {
	for ; j+8 <= len(b); j += 8 {
		w := binary.LittleEndian.Uint64(b[j:])
		q := w ^ ('"' * ones)
		s := w ^ ('\\' * ones)
		// A byte is flagged when it is zero in q or s, or below 0x20 in w.
		// Borrows can flag a byte above a flagged one, never an unflagged
		// word, so the lowest flag is exact.
		m := ((q - ones) &^ q) | ((s - ones) &^ s) | ((w - 0x20*ones) &^ w)
		if m &= highs; m != 0 {
			return j + bits.TrailingZeros64(m)/8
		}
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
			return j
		}
	}
	return j
}

// str decodes a string value; escaped strings go through segmentio.
func (d *fdec) str(i int, s *string) (int, bool) {
	if v, end, ok := d.rawString(i); ok {
		*s = v
		return end, true
	}
	end, ok := d.skipString(i)
	if !ok {
		return 0, false
	}
	if json.Unmarshal(d.b[i:end], s) != nil {
		return 0, false
	}
	return end, true
}

func (d *fdec) strPtr(i int, p **string) (int, bool) {
	if d.isNull(i) {
		*p = nil
		return i + 4, true
	}
	s := new(string)
	*p = s
	return d.str(i, s)
}

func (d *fdec) isNull(i int) bool {
	return i+4 <= len(d.b) && string(d.b[i:i+4]) == "null"
}

// intNum decodes a plain JSON integer.
func (d *fdec) intNum(i int, bits int) (int64, int, bool) {
	b := d.b
	j, ok := d.intPart(i)
	if !ok || j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	if j-i > 18 || bits < 64 && j-i > 9 { // may not fit: strconv checks the range
		v, err := strconv.ParseInt(bytesString(b[i:j]), 10, bits)
		if err != nil {
			return 0, 0, false
		}
		return v, j, true
	}
	var v int64
	for _, c := range b[i:j] {
		if c != '-' {
			v = v*10 + int64(c-'0')
		}
	}
	if b[i] == '-' {
		v = -v
	}
	return v, j, true
}

func (d *fdec) int64v(i int, p *int64) (int, bool) {
	v, end, ok := d.intNum(i, 64)
	*p = v
	return end, ok
}

func (d *fdec) float(i int, p *float64) (int, bool) {
	end, ok := d.skipNumber(i)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(bytesString(d.b[i:end]), 64)
	if err != nil {
		return 0, false
	}
	*p = v
	return end, true
}

func (d *fdec) boolv(i int, p *bool) (int, bool) {
	b := d.b
	switch {
	case i+4 <= len(b) && string(b[i:i+4]) == "true":
		*p = true
		return i + 4, true
	case i+5 <= len(b) && string(b[i:i+5]) == "false":
		*p = false
		return i + 5, true
	}
	return 0, false
}

// raw takes any non-null value as raw JSON.
func (d *fdec) raw(i int, p *json.RawMessage) (int, bool) {
	if d.isNull(i) {
		return 0, false
	}
	end, ok := d.skip(i)
	if !ok {
		return 0, false
	}
	*p = json.RawMessage(d.b[i:end])
	return end, true
}

// skip validates and steps over any JSON value.
func (d *fdec) skip(i int) (int, bool) {
	b := d.b
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return d.skipString(i)
	case c == '{':
		if d.depth++; d.depth > 100 {
			return 0, false
		}
		end, ok := d.object(i, nil, nil)
		d.depth--
		return end, ok
	case c == '[':
		if d.depth++; d.depth > 100 {
			return 0, false
		}
		end, ok := d.array(i, d.skip)
		d.depth--
		return end, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return d.skipNumber(i)
	case c == 't' && i+4 <= len(b) && string(b[i:i+4]) == "true":
		return i + 4, true
	case c == 'f' && i+5 <= len(b) && string(b[i:i+5]) == "false":
		return i + 5, true
	case c == 'n' && d.isNull(i):
		return i + 4, true
	}
	return 0, false
}

func (d *fdec) skipString(i int) (int, bool) {
	b := d.b
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := plainRun(b, i+1); j < len(b); j = plainRun(b, j+1) {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false
				}
				for k := j + 1; k <= j+4; k++ {
					if !isHex(b[k]) {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (d *fdec) skipNumber(i int) (int, bool) {
	b := d.b
	j, ok := d.intPart(i)
	if !ok {
		return 0, false
	}
	if j < len(b) && b[j] == '.' {
		if j, ok = d.digits(j + 1); !ok {
			return 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if j, ok = d.digits(j); !ok {
			return 0, false
		}
	}
	return j, true
}

// intPart steps over a number's sign and integer digits, which must not
// start with a needless 0.
func (d *fdec) intPart(i int) (int, bool) {
	if i < len(d.b) && d.b[i] == '-' {
		i++
	}
	end, ok := d.digits(i)
	return end, ok && (d.b[i] != '0' || end == i+1)
}

// digits steps over one or more digits.
func (d *fdec) digits(i int) (int, bool) {
	j := i
	for j < len(d.b) && d.b[j] >= '0' && d.b[j] <= '9' {
		j++
	}
	return j, j > i
}

// traceItemKeys name the members traceItem knows: first those decoded into
// its destinations, in their order, then those its other decodes.
var traceItemKeys = newKeySet(
	"exceptions", "diagnosticsChannelEvents", "entrypoint", "dispatchNamespace", "scriptTags",
	"durableObjectId", "outcome", "executionModel", "truncated", "cpuTime", "wallTime",
	"event", "eventTimestamp", "logs", "scriptName", "scriptVersion", "workerId",
)

func (d *fdec) traceItem(i int, t *TraceItem) (int, bool) {
	other := func(key string, i int) (int, bool) {
		switch key {
		case "event":
			if d.isNull(i) {
				t.Event = nil
				return i + 4, true
			}
			var blk *fetchBlock
			if d.re != nil {
				blk = &d.re.blk
				*blk = fetchBlock{}
			} else {
				blk = new(fetchBlock)
			}
			t.Event = &blk.e
			return d.event(i, blk)
		case "eventTimestamp":
			if d.isNull(i) {
				t.EventTimestamp = nil
				return i + 4, true
			}
			if d.re != nil {
				t.EventTimestamp = &d.re.ts
			} else {
				t.EventTimestamp = new(int64)
			}
			return d.int64v(i, t.EventTimestamp)
		case "logs":
			if d.re != nil && d.re.logs != nil {
				t.Logs = d.re.logs[:0]
			} else {
				t.Logs = make([]Log, 0, 4)
			}
			end, ok := appendEach(d, i, &t.Logs, d.log)
			if d.re != nil {
				d.re.logs = t.Logs
			}
			return end, ok
		case "scriptName":
			if d.re != nil && !d.isNull(i) {
				t.ScriptName = &d.re.name
				return d.str(i, t.ScriptName)
			}
			return d.strPtr(i, &t.ScriptName)
		case "scriptVersion":
			if d.re != nil {
				d.re.sv = ScriptVersion{}
				t.ScriptVersion = &d.re.sv
			} else {
				t.ScriptVersion = new(ScriptVersion)
			}
			v := t.ScriptVersion
			return d.object(i, scriptVersionKeys, nil, &v.ID, &v.Tag, &v.Message)
		case "workerId":
			if d.isNull(i) {
				t.WorkerID = ""
				return i + 4, true
			}
			return d.str(i, &t.WorkerID)
		}
		return d.skip(i)
	}
	return d.object(i, traceItemKeys, other,
		&t.Exceptions, &t.DiagnosticsChannelEvents, &t.Entrypoint, &t.DispatchNamespace, &t.ScriptTags,
		&t.DurableObjectID, &t.Outcome, &t.ExecutionModel, &t.Truncated, &t.CPUTime, &t.WallTime)
}

var scriptVersionKeys = newKeySet("id", "tag", "message")

// fetchBlock allocates a fetch event's parts together.
type fetchBlock struct {
	e    Event
	req  Request
	resp Response
}

// eventKeys name the members event knows, as traceItemKeys do.
var eventKeys = newKeySet(
	"rpcMethod", "cron", "scheduledTime", "queue", "batchSize", "mailFrom", "rcptTo",
	"rawSize", "consumedEvents",
	"request", "response", "getWebSocketEvent",
)

func (d *fdec) event(i int, blk *fetchBlock) (int, bool) {
	e := &blk.e
	other := func(key string, i int) (int, bool) {
		switch key {
		case "request":
			e.Request = &blk.req
			r := e.Request
			return d.object(i, requestKeys, nil, &r.URL, &r.Method, &r.Headers, &r.Cf)
		case "response":
			e.Response = &blk.resp
			return d.object(i, responseKeys, nil, &e.Response.Status)
		case "getWebSocketEvent":
			e.WebSocketEvent = new(WebSocketEvent)
			w := e.WebSocketEvent
			return d.object(i, webSocketKeys, nil, &w.WebSocketEventType, &w.Code, &w.WasClean)
		}
		return d.skip(i)
	}
	return d.object(i, eventKeys, other,
		&e.RPCMethod, &e.Cron, &e.ScheduledTime, &e.Queue, &e.BatchSize, &e.MailFrom, &e.RcptTo,
		&e.RawSize, &e.ConsumedEvents)
}

var (
	requestKeys   = newKeySet("url", "method", "headers", "cf")
	responseKeys  = newKeySet("status")
	webSocketKeys = newKeySet("webSocketEventType", "code", "wasClean")
	consumedKeys  = newKeySet("scriptName")
	logKeys       = newKeySet("message", "level", "timestamp", "errorInfo")
	exceptionKeys = newKeySet("stack", "name", "message", "timestamp")
	diagKeys      = newKeySet("channel", "message", "timestamp")
)

// headers decodes an object of strings, aliasing b unless escaped.
func (d *fdec) headers(i int, h *Headers) (int, bool) {
	var stack [32]Header
	out := stack[:0]
	end, ok := d.object(i, nil, func(key string, i int) (int, bool) {
		v, end, ok := d.rawString(i)
		if !ok {
			// An escaped value (sec-ch-ua has quotes): unquote it as
			// Headers.UnmarshalJSON does.
			if end, ok = d.skipString(i); !ok {
				return 0, false
			}
			if v, ok = unquoteStd(d.b[i:end]); !ok {
				return 0, false
			}
		}
		out = append(out, Header{Name: key, Value: v})
		return end, true
	})
	if !ok {
		return 0, false
	}
	*h = nil // as Headers.UnmarshalJSON gives for {}
	if len(out) > 0 {
		if d.re != nil {
			*h = append(d.re.headers[:0], out...)
			d.re.headers = *h
		} else {
			*h = append(make(Headers, 0, len(out)), out...)
		}
	}
	return end, true
}

// unquoteStd unquotes q with encoding/json, kept apart so that only the
// escaped case pays for a heap string.
func unquoteStd(q []byte) (string, bool) {
	var s string
	err := stdjson.Unmarshal(q, &s)
	return s, err == nil
}

func (d *fdec) log(i int, l *Log) (int, bool) {
	return d.object(i, logKeys, nil, &l.Message, &l.Level, &l.Timestamp, &l.ErrorInfo)
}

func (d *fdec) exception(i int, x *Exception) (int, bool) {
	return d.object(i, exceptionKeys, nil, &x.Stack, &x.Name, &x.Message, &x.Timestamp)
}

func (d *fdec) diagnostic(i int, x *DiagnosticEvent) (int, bool) {
	return d.object(i, diagKeys, nil, &x.Channel, &x.Message, &x.Timestamp)
}

func (d *fdec) consumed(i int, c *TailConsumedEvent) (int, bool) {
	return d.object(i, consumedKeys, nil, &c.ScriptName)
}
