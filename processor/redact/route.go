package redact

import (
	"fmt"
	"strings"
)

// Router turns request URLs into (host, route template) pairs for the
// per-endpoint rollups, so that their cardinality stays bounded. It is
// immutable after NewRouter and safe for concurrent use.
//
// Configured patterns are tried first, in order; the first that matches the
// path is the route, verbatim. Pattern syntax, segment by segment:
//
//	/users/:id/orders/:oid   a literal segment matches itself (case-sensitive);
//	                         ":name" matches any one non-empty segment
//	/api/*                   "*", last segment only, matches zero or more
//	                         remaining segments ("/api", "/api/x/y")
//
// A trailing slash in the path is ignored when matching a pattern.
//
// Without a matching pattern the heuristic keeps the path and replaces each
// ID-like segment with ":id": all digits, a UUID, hex (at least 8 hex digits
// with at least one decimal digit, or what the URL hex-ID rule redacts),
// base-64-looking (at least 16 bytes of A-Za-z0-9 + - _ = with at least one
// digit and one letter, or what the URL base-64 rule redacts), REDACTED, or
// any segment longer than 64 bytes. "123.png" keeps its extension: ":id.png".
// Paths deeper than 16 segments end in "/*".
type Router struct {
	patterns [][]string // split patterns
	raw      []string
}

// maxSegments bounds the depth of heuristic routes.
const maxSegments = 16

// NewRouter validates and compiles patterns (see Router).
func NewRouter(patterns []string) (*Router, error) {
	r := &Router{}
	for _, p := range patterns {
		if p == "" || p[0] != '/' {
			return nil, fmt.Errorf("route pattern %q: must start with '/'", p)
		}
		if strings.ContainsAny(p, "?#") {
			return nil, fmt.Errorf("route pattern %q: must not contain '?' or '#'", p)
		}
		segs := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
		if len(segs) == 1 && segs[0] == "" {
			segs = nil // "/"
		}
		for i, s := range segs {
			switch {
			case s == "":
				return nil, fmt.Errorf("route pattern %q: empty segment", p)
			case s == "*" && i != len(segs)-1:
				return nil, fmt.Errorf("route pattern %q: '*' must be the last segment", p)
			case s == ":":
				return nil, fmt.Errorf("route pattern %q: ':' needs a name", p)
			case strings.Contains(s, "*") && s != "*":
				return nil, fmt.Errorf("route pattern %q: '*' must be a whole segment", p)
			}
		}
		r.patterns = append(r.patterns, segs)
		r.raw = append(r.raw, p)
	}
	return r, nil
}

// Route returns the host (with port, without user info) and the route
// template of rawURL. The query and fragment are dropped; an empty path is
// "/". Route allocates only when the heuristic rewrites a segment; host is
// always a substring of rawURL.
func (r *Router) Route(rawURL string) (host, route string) {
	host, path := splitURL(rawURL)
	if path == "" {
		path = "/"
	}
	for i, segs := range r.patterns {
		if matchPattern(segs, path) {
			return host, r.raw[i]
		}
	}
	return host, templatePath(path)
}

// splitURL separates host and path, dropping user info, query and fragment.
// "scheme://host/p", "//host/p", "/p" and "host/p" are understood.
func splitURL(u string) (host, path string) {
	if k := strings.IndexAny(u, "?#"); k >= 0 {
		u = u[:k]
	}
	switch s := strings.Index(u, "://"); {
	case s >= 0 && strings.IndexByte(u[:s], '/') < 0:
		u = u[s+3:]
	case strings.HasPrefix(u, "//"):
		u = u[2:]
	case strings.HasPrefix(u, "/"):
		return "", u
	}
	k := strings.IndexByte(u, '/')
	if k < 0 {
		k = len(u)
	}
	host, path = u[:k], u[k:]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	return host, path
}

// matchPattern matches path ("/a/b") against the segments of a pattern.
func matchPattern(segs []string, path string) bool {
	rest := strings.TrimSuffix(path[1:], "/")
	for _, s := range segs {
		if s == "*" {
			return true
		}
		if rest == "" {
			return false
		}
		k := strings.IndexByte(rest, '/')
		var seg string
		if k < 0 {
			seg, rest = rest, ""
		} else {
			seg, rest = rest[:k], rest[k+1:]
			if rest == "" {
				return false // "/a/" has no second segment
			}
		}
		if seg == "" || (s[0] != ':' && s != seg) {
			return false
		}
	}
	return rest == ""
}

// templatePath applies the ID heuristic; it returns path itself when no
// segment changes.
func templatePath(path string) string {
	sp := splice{s: path}
	n := 0
	for i := 1; i <= len(path); {
		k := strings.IndexByte(path[i:], '/')
		if k < 0 {
			k = len(path) - i
		}
		seg := path[i : i+k]
		n++
		if n > maxSegments {
			sp.replace(i, len(path), "*")
			break
		}
		if repl, ext, ok := idSegment(seg); ok {
			sp.replace(i, i+k-len(ext), repl) // ext, a suffix of seg, is kept
		}
		i += k + 1
	}
	return sp.String()
}

// idSegment reports whether seg is an ID, returning ":id" and the extension
// to keep.
func idSegment(seg string) (repl, ext string, ok bool) {
	if seg == "" {
		return "", "", false
	}
	if len(seg) > 64 {
		return ":id", "", true
	}
	if isID(seg) {
		return ":id", "", true
	}
	if d := strings.LastIndexByte(seg, '.'); d > 0 && len(seg)-d-1 >= 1 && len(seg)-d-1 <= 5 && isAlpha(seg[d+1:]) && isID(seg[:d]) {
		return ":id", seg[d:], true
	}
	return "", "", false
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// isID is the segment heuristic (see Router).
func isID(s string) bool {
	if s == Redacted || s == ":id" {
		return true
	}
	var digit, letter, hex, other int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digit++
			hex++
		case 'a' <= c|0x20 && c|0x20 <= 'z':
			letter++
			if c|0x20 <= 'f' {
				hex++
			}
		case c == '+' || c == '-' || c == '_' || c == '=':
		default:
			other++
		}
	}
	switch {
	case other > 0:
		return false
	case digit == len(s):
		return true
	case uuid(s):
		return true
	case hex == len(s) && len(s) >= 8 && digit > 0:
		return true
	case len(s) >= 16 && digit > 0 && letter > 0:
		return true
	}
	return len(s) >= minRedactRun && strings.IndexByte(s, '=') < 0 && sensitiveRun(s)
}

// uuid reports whether s is 8-4-4-4-12 hex digits.
func uuid(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if idClass[c]&cHex == 0 {
			return false
		}
	}
	return true
}
