package schemas

import (
	stdjson "encoding/json"
	"strconv"
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

// object walks an object starting at b[i] == '{', calling field for each
// member with the index of its value; field returns the end of the value
// and a field number (-1 when unknown). A repeated known field fails.
func (d *fdec) object(i int, field func(key string, i int) (int, int, bool)) (int, bool) {
	b := d.b
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = d.ws(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint64
	for {
		key, next, ok := d.rawString(i)
		if !ok {
			return 0, false
		}
		i = d.ws(next)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		end, n, ok := field(key, d.ws(i+1))
		if !ok {
			return 0, false
		}
		if n >= 0 {
			if seen&(1<<n) != 0 {
				return 0, false
			}
			seen |= 1 << n
		}
		i = d.ws(end)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = d.ws(i + 1)
	}
}

// array walks an array starting at b[i] == '[', calling elem at each element.
func (d *fdec) array(i int, elem func(i int) (int, bool)) (int, bool) {
	b := d.b
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = d.ws(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := elem(i)
		if !ok {
			return 0, false
		}
		i = d.ws(end)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == ']' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = d.ws(i + 1)
	}
}

// rawString returns an unescaped string without control characters.
func (d *fdec) rawString(i int) (string, int, bool) {
	b := d.b
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return bytesString(b[i+1 : j]), j + 1, true
		}
		if c == '\\' || c < 0x20 {
			return "", 0, false
		}
	}
	return "", 0, false
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
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	s := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == s || (b[s] == '0' && j > s+1) {
		return 0, 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
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
		end, ok := d.object(i, func(_ string, i int) (int, int, bool) {
			end, ok := d.skip(i)
			return end, -1, ok
		})
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
	for j := i + 1; j < len(b); j++ {
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
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	s := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == s || (b[s] == '0' && j > s+1) {
		return 0, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		s = j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == s {
			return 0, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		s = j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == s {
			return 0, false
		}
	}
	return j, true
}

func (d *fdec) traceItem(i int, t *TraceItem) (int, bool) {
	return d.object(i, func(key string, i int) (int, int, bool) {
		var end int
		var ok bool
		n := -1
		switch key {
		case "event":
			n = 0
			if d.isNull(i) {
				t.Event, end, ok = nil, i+4, true
				break
			}
			var blk *fetchBlock
			if d.re != nil {
				blk = &d.re.blk
				*blk = fetchBlock{}
			} else {
				blk = new(fetchBlock)
			}
			t.Event = &blk.e
			end, ok = d.event(i, blk)
		case "eventTimestamp":
			n = 1
			if d.isNull(i) {
				t.EventTimestamp, end, ok = nil, i+4, true
				break
			}
			if d.re != nil {
				t.EventTimestamp = &d.re.ts
			} else {
				t.EventTimestamp = new(int64)
			}
			end, ok = d.int64v(i, t.EventTimestamp)
		case "logs":
			n = 2
			if d.re != nil && d.re.logs != nil {
				t.Logs = d.re.logs[:0]
			} else {
				t.Logs = make([]Log, 0, 4)
			}
			end, ok = d.array(i, func(i int) (int, bool) {
				t.Logs = append(t.Logs, Log{})
				return d.log(i, &t.Logs[len(t.Logs)-1])
			})
			if d.re != nil {
				d.re.logs = t.Logs
			}
		case "exceptions":
			n = 3
			t.Exceptions = []Exception{}
			end, ok = d.array(i, func(i int) (int, bool) {
				t.Exceptions = append(t.Exceptions, Exception{})
				return d.exception(i, &t.Exceptions[len(t.Exceptions)-1])
			})
		case "diagnosticsChannelEvents":
			n = 4
			t.DiagnosticsChannelEvents = []DiagnosticEvent{}
			end, ok = d.array(i, func(i int) (int, bool) {
				t.DiagnosticsChannelEvents = append(t.DiagnosticsChannelEvents, DiagnosticEvent{})
				return d.diagnostic(i, &t.DiagnosticsChannelEvents[len(t.DiagnosticsChannelEvents)-1])
			})
		case "scriptName":
			n = 5
			if d.re != nil && !d.isNull(i) {
				t.ScriptName = &d.re.name
				end, ok = d.str(i, t.ScriptName)
				break
			}
			end, ok = d.strPtr(i, &t.ScriptName)
		case "entrypoint":
			n = 6
			end, ok = d.str(i, &t.Entrypoint)
		case "scriptVersion":
			n = 7
			if d.re != nil {
				d.re.sv = ScriptVersion{}
				t.ScriptVersion = &d.re.sv
			} else {
				t.ScriptVersion = new(ScriptVersion)
			}
			v := t.ScriptVersion
			end, ok = d.object(i, func(key string, i int) (int, int, bool) {
				switch key {
				case "id":
					end, ok := d.str(i, &v.ID)
					return end, 0, ok
				case "tag":
					end, ok := d.str(i, &v.Tag)
					return end, 1, ok
				case "message":
					end, ok := d.str(i, &v.Message)
					return end, 2, ok
				}
				end, ok := d.skip(i)
				return end, -1, ok
			})
		case "dispatchNamespace":
			n = 8
			end, ok = d.str(i, &t.DispatchNamespace)
		case "scriptTags":
			n = 9
			t.ScriptTags = []string{}
			end, ok = d.array(i, func(i int) (int, bool) {
				t.ScriptTags = append(t.ScriptTags, "")
				return d.str(i, &t.ScriptTags[len(t.ScriptTags)-1])
			})
		case "durableObjectId":
			n = 10
			end, ok = d.str(i, &t.DurableObjectID)
		case "outcome":
			n = 11
			end, ok = d.str(i, &t.Outcome)
		case "executionModel":
			n = 12
			end, ok = d.str(i, &t.ExecutionModel)
		case "truncated":
			n = 13
			end, ok = d.boolv(i, &t.Truncated)
		case "cpuTime":
			n = 14
			end, ok = d.float(i, &t.CPUTime)
		case "wallTime":
			n = 15
			end, ok = d.float(i, &t.WallTime)
		case "workerId":
			n = 16
			if d.isNull(i) {
				t.WorkerID, end, ok = "", i+4, true
				break
			}
			end, ok = d.str(i, &t.WorkerID)
		default:
			end, ok = d.skip(i)
		}
		return end, n, ok
	})
}

// fetchBlock allocates a fetch event's parts together.
type fetchBlock struct {
	e    Event
	req  Request
	resp Response
}

func (d *fdec) event(i int, blk *fetchBlock) (int, bool) {
	e := &blk.e
	return d.object(i, func(key string, i int) (int, int, bool) {
		var end int
		var ok bool
		n := -1
		switch key {
		case "request":
			n = 0
			e.Request = &blk.req
			end, ok = d.request(i, e.Request)
		case "response":
			n = 1
			e.Response = &blk.resp
			r := e.Response
			end, ok = d.object(i, func(key string, i int) (int, int, bool) {
				if key == "status" {
					v, end, ok := d.intNum(i, strconv.IntSize)
					r.Status = int(v)
					return end, 0, ok
				}
				end, ok := d.skip(i)
				return end, -1, ok
			})
		case "rpcMethod":
			n = 2
			end, ok = d.str(i, &e.RPCMethod)
		case "cron":
			n = 3
			end, ok = d.str(i, &e.Cron)
		case "scheduledTime":
			n = 4
			end, ok = d.raw(i, &e.ScheduledTime)
		case "queue":
			n = 5
			end, ok = d.str(i, &e.Queue)
		case "batchSize":
			n = 6
			e.BatchSize = new(int64)
			end, ok = d.int64v(i, e.BatchSize)
		case "mailFrom":
			n = 7
			end, ok = d.str(i, &e.MailFrom)
		case "rcptTo":
			n = 8
			end, ok = d.str(i, &e.RcptTo)
		case "rawSize":
			n = 9
			e.RawSize = new(int64)
			end, ok = d.int64v(i, e.RawSize)
		case "consumedEvents":
			n = 10
			e.ConsumedEvents = []TailConsumedEvent{}
			end, ok = d.array(i, func(i int) (int, bool) {
				e.ConsumedEvents = append(e.ConsumedEvents, TailConsumedEvent{})
				c := &e.ConsumedEvents[len(e.ConsumedEvents)-1]
				return d.object(i, func(key string, i int) (int, int, bool) {
					if key == "scriptName" {
						end, ok := d.strPtr(i, &c.ScriptName)
						return end, 0, ok
					}
					end, ok := d.skip(i)
					return end, -1, ok
				})
			})
		case "getWebSocketEvent":
			n = 11
			e.WebSocketEvent = new(WebSocketEvent)
			w := e.WebSocketEvent
			end, ok = d.object(i, func(key string, i int) (int, int, bool) {
				switch key {
				case "webSocketEventType":
					end, ok := d.str(i, &w.WebSocketEventType)
					return end, 0, ok
				case "code":
					v, end, ok := d.intNum(i, strconv.IntSize)
					c := int(v)
					w.Code = &c
					return end, 1, ok
				case "wasClean":
					w.WasClean = new(bool)
					end, ok := d.boolv(i, w.WasClean)
					return end, 2, ok
				}
				end, ok := d.skip(i)
				return end, -1, ok
			})
		default:
			end, ok = d.skip(i)
		}
		return end, n, ok
	})
}

func (d *fdec) request(i int, r *Request) (int, bool) {
	return d.object(i, func(key string, i int) (int, int, bool) {
		switch key {
		case "url":
			end, ok := d.str(i, &r.URL)
			return end, 0, ok
		case "method":
			end, ok := d.str(i, &r.Method)
			return end, 1, ok
		case "headers":
			end, ok := d.headers(i, &r.Headers)
			return end, 2, ok
		case "cf":
			end, ok := d.raw(i, &r.Cf)
			return end, 3, ok
		}
		end, ok := d.skip(i)
		return end, -1, ok
	})
}

// headers decodes an object of strings, aliasing b unless escaped.
func (d *fdec) headers(i int, h *Headers) (int, bool) {
	var stack [32]Header
	out := stack[:0]
	end, ok := d.object(i, func(key string, i int) (int, int, bool) {
		v, end, ok := d.rawString(i)
		if !ok {
			// An escaped value (sec-ch-ua has quotes): unquote it as
			// Headers.UnmarshalJSON does.
			if end, ok = d.skipString(i); !ok {
				return 0, 0, false
			}
			if v, ok = unquoteStd(d.b[i:end]); !ok {
				return 0, 0, false
			}
		}
		out = append(out, Header{Name: key, Value: v})
		return end, -1, true
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
	return d.object(i, func(key string, i int) (int, int, bool) {
		switch key {
		case "message":
			end, ok := d.raw(i, &l.Message)
			return end, 0, ok
		case "level":
			end, ok := d.str(i, &l.Level)
			return end, 1, ok
		case "timestamp":
			end, ok := d.int64v(i, &l.Timestamp)
			return end, 2, ok
		case "errorInfo":
			end, ok := d.raw(i, &l.ErrorInfo)
			return end, 3, ok
		}
		end, ok := d.skip(i)
		return end, -1, ok
	})
}

func (d *fdec) exception(i int, x *Exception) (int, bool) {
	return d.object(i, func(key string, i int) (int, int, bool) {
		switch key {
		case "stack":
			end, ok := d.str(i, &x.Stack)
			return end, 0, ok
		case "name":
			end, ok := d.str(i, &x.Name)
			return end, 1, ok
		case "message":
			end, ok := d.str(i, &x.Message)
			return end, 2, ok
		case "timestamp":
			end, ok := d.int64v(i, &x.Timestamp)
			return end, 3, ok
		}
		end, ok := d.skip(i)
		return end, -1, ok
	})
}

func (d *fdec) diagnostic(i int, x *DiagnosticEvent) (int, bool) {
	return d.object(i, func(key string, i int) (int, int, bool) {
		switch key {
		case "channel":
			end, ok := d.str(i, &x.Channel)
			return end, 0, ok
		case "message":
			end, ok := d.raw(i, &x.Message)
			return end, 1, ok
		case "timestamp":
			end, ok := d.int64v(i, &x.Timestamp)
			return end, 2, ok
		}
		end, ok := d.skip(i)
		return end, -1, ok
	})
}
