package schemas

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/segmentio/encoding/json"
)

// Header is one request header as the runtime recorded it.
type Header struct {
	Name  string
	Value string
}

// Headers are the request headers in the order the runtime sent them (it
// sends them sorted by name). They decode from and encode to a JSON object of
// strings; decoding costs two allocations whatever the number of headers.
type Headers []Header

// Get returns the value of the first header called name.
func (h Headers) Get(name string) (string, bool) {
	for i := range h {
		if h[i].Name == name {
			return h[i].Value, true
		}
	}
	return "", false
}

// MarshalJSON encodes h as a JSON object in order.
func (h Headers) MarshalJSON() ([]byte, error) {
	if h == nil {
		return []byte("{}"), nil
	}
	n := 2
	for i := range h {
		n += len(h[i].Name) + len(h[i].Value) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = json.Append(b, h[i].Name, 0)
		b = append(b, ':')
		b, _ = json.Append(b, h[i].Value, 0)
	}
	return append(b, '}'), nil
}

var errHeaderSyntax = errors.New("headers: want a JSON object of strings")

// ErrWrongType is wrapped by the errors of schemas' own decoders for a JSON
// value of the wrong type (a request header value that is not a string).
// The JSON decoder reports its own type errors as *json.UnmarshalTypeError.
var ErrWrongType = errors.New("wrong JSON type")

// UnmarshalJSON decodes a JSON object of strings, keeping its order. null
// gives no headers. All names and values share one allocation.
func (h *Headers) UnmarshalJSON(b []byte) error {
	*h = (*h)[:0]
	i := skipWS(b, 0)
	if i+4 <= len(b) && string(b[i:i+4]) == "null" {
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		return errHeaderSyntax
	}
	// First pass: find every string so one allocation holds all text.
	var stack [32]span
	spans := stack[:0]
	size := 0
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return errHeaderSyntax
		}
		return nil
	}
	for {
		var s span
		var err error
		if s.ks, s.ke, s.kflags, err = scanString(b, i); err != nil {
			return err
		}
		i = skipWS(b, s.ke+1)
		if i >= len(b) || b[i] != ':' {
			return errHeaderSyntax
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] != '"' {
			return fmt.Errorf("%w: headers: value of %q is not a string", ErrWrongType, b[s.ks+1:s.ke])
		}
		if s.vs, s.ve, s.vflags, err = scanString(b, i); err != nil {
			return err
		}
		spans = append(spans, s)
		size += s.ke - s.ks + s.ve - s.vs
		i = skipWS(b, s.ve+1)
		if i >= len(b) {
			return errHeaderSyntax
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return errHeaderSyntax
		}
		i = skipWS(b, i+1)
	}
	if skipWS(b, i+1) != len(b) {
		return errHeaderSyntax
	}
	// Second pass: unquote into one buffer, then point the strings into it.
	// The buffer is never written again, so the strings may alias it.
	buf := make([]byte, 0, size)
	for j := range spans {
		s := &spans[j]
		var err error
		start := len(buf)
		if buf, err = appendUnquoted(buf, b[s.ks:s.ke+1], s.kflags); err != nil {
			return err
		}
		s.ks, s.ke = start, len(buf)
		start = len(buf)
		if buf, err = appendUnquoted(buf, b[s.vs:s.ve+1], s.vflags); err != nil {
			return err
		}
		s.vs, s.ve = start, len(buf)
	}
	if cap(*h) < len(spans) {
		*h = make(Headers, 0, len(spans))
	}
	for _, s := range spans {
		*h = append(*h, Header{Name: bytesString(buf[s.ks:s.ke]), Value: bytesString(buf[s.vs:s.ve])})
	}
	return nil
}

type span struct {
	ks, ke, vs, ve int
	kflags, vflags uint8
}

// strEscaped is the scanString flag for a string with a backslash escape.
const strEscaped uint8 = 1

// bytesString views b as a string without copying; b must never change.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString finds the JSON string starting at b[i] == '"' and returns the
// positions of its quotes and what it contains. The decoder has already
// checked the object's syntax before calling UnmarshalJSON; this only has to
// find the string's end quickly.
func scanString(b []byte, i int) (start, end int, flags uint8, err error) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, 0, errHeaderSyntax
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return i, j, flags, nil
		case '\\':
			flags |= strEscaped
			j++
		}
	}
	return 0, 0, 0, errors.New("headers: unterminated string")
}

// appendUnquoted appends the contents of the quoted JSON string q.
func appendUnquoted(dst, q []byte, flags uint8) ([]byte, error) {
	if flags&strEscaped == 0 {
		s := q[1 : len(q)-1]
		if !utf8.Valid(s) {
			// Match encoding/json, which replaces invalid UTF-8.
			for len(s) > 0 {
				r, n := utf8.DecodeRune(s)
				dst = utf8.AppendRune(dst, r)
				s = s[n:]
			}
			return dst, nil
		}
		return append(dst, s...), nil
	}
	var s string
	if err := stdjson.Unmarshal(q, &s); err != nil {
		return dst, fmt.Errorf("headers: %w", err)
	}
	return append(dst, s...), nil
}
