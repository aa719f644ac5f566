package schemas

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

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

// UnmarshalJSON decodes a JSON object of strings, keeping its order. null
// gives no headers.
func (h *Headers) UnmarshalJSON(b []byte) error {
	*h = (*h)[:0]
	i := skipWS(b, 0)
	if i+4 <= len(b) && string(b[i:i+4]) == "null" {
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		return errHeaderSyntax
	}
	// First pass: count headers and bytes so one allocation holds all text.
	type span struct {
		ks, ke, vs, ve int
		kesc, vesc     bool
	}
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
		if s.ks, s.ke, s.kesc, err = scanString(b, i); err != nil {
			return err
		}
		i = skipWS(b, s.ke+1)
		if i >= len(b) || b[i] != ':' {
			return errHeaderSyntax
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] != '"' {
			return fmt.Errorf("headers: value of %q is not a string", b[s.ks+1:s.ke])
		}
		if s.vs, s.ve, s.vesc, err = scanString(b, i); err != nil {
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
	buf := make([]byte, 0, size)
	type off struct{ ks, ke, vs, ve int }
	offs := make([]off, len(spans))
	for j, s := range spans {
		var err error
		offs[j].ks = len(buf)
		if buf, err = appendUnquoted(buf, b[s.ks:s.ke+1], s.kesc); err != nil {
			return err
		}
		offs[j].ke, offs[j].vs = len(buf), len(buf)
		if buf, err = appendUnquoted(buf, b[s.vs:s.ve+1], s.vesc); err != nil {
			return err
		}
		offs[j].ve = len(buf)
	}
	text := string(buf)
	if cap(*h) < len(spans) {
		*h = make(Headers, 0, len(spans))
	}
	for _, o := range offs {
		*h = append(*h, Header{Name: text[o.ks:o.ke], Value: text[o.vs:o.ve]})
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString finds the JSON string starting at b[i] == '"' and returns the
// positions of its quotes and whether it contains escapes.
func scanString(b []byte, i int) (start, end int, esc bool, err error) {
	if i >= len(b) || b[i] != '"' {
		return 0, 0, false, errHeaderSyntax
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '\\':
			esc = true
			j++
		case c == '"':
			return i, j, esc, nil
		case c < 0x20:
			return 0, 0, false, errors.New("headers: control character in string")
		}
	}
	return 0, 0, false, errors.New("headers: unterminated string")
}

// appendUnquoted appends the contents of the quoted JSON string q.
func appendUnquoted(dst, q []byte, esc bool) ([]byte, error) {
	if !esc {
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
