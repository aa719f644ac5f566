package redact

import "strings"

// A textRule returns s with its matches replaced by REDACTED and whether
// anything changed; unchanged, it returns s itself without allocating.
type textRule func(s string) (string, bool)

// Character classes of the text rules; a match is searched for inside each
// maximal run of its class, so a REDACTED that replaced a run can never join
// its neighbours into a new match.
var (
	emailClass = classOf("A-Za-z0-9", "._%+-@")
	ipv4Class  = classOf("0-9", ".")
	ipv6Class  = classOf("0-9A-Fa-f", ":.")
	jwtClass   = classOf("A-Za-z0-9", "_-.")
	cardClass  = classOf("0-9", " -")
	wordClass  = classOf("A-Za-z0-9", "_")
	tokenClass = classOf("A-Za-z0-9", "-._~+/=") // RFC 6750 b64token
)

// classOf builds a byte table from a ranges string ("A-Za-z") and extra bytes.
func classOf(ranges, extra string) *[256]bool {
	t := new([256]bool)
	for i := 0; i+2 < len(ranges); i += 3 {
		for c := ranges[i]; c <= ranges[i+2]; c++ {
			t[c] = true
		}
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	return t
}

// runRule builds a textRule that calls match on every maximal run [i, j) of
// class at least minLen bytes long. match returns the span [a, b) within the
// run to redact; the rest of the run after b is offered to match again.
// maybe is a cheap whole-string test (a SIMD byte search, mostly) that
// rules the string out before any run is looked at.
func runRule(class *[256]bool, minLen int, maybe func(string) bool, match func(s string, i, j int) (a, b int, ok bool)) textRule {
	return func(s string) (string, bool) {
		if len(s) < minLen || !maybe(s) {
			return s, false
		}
		sp := splice{s: s}
		for i := 0; i < len(s); {
			if !class[s[i]] {
				i++
				continue
			}
			j := i + 1
			for j < len(s) && class[s[j]] {
				j++
			}
			for k := i; j-k >= minLen; {
				a, b, ok := match(s, k, j)
				if !ok {
					break
				}
				sp.replace(a, b, Redacted)
				k = b
			}
			i = j
		}
		return sp.String(), sp.edited()
	}
}

func hasByte(c byte) func(string) bool {
	return func(s string) bool { return strings.IndexByte(s, c) >= 0 }
}

// enoughDigits rules out text with fewer than 13 digits in all.
func enoughDigits(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n >= 13
}

// wordBoundary reports whether s[i:j] is not glued to a letter, digit or '_'.
func wordBoundary(s string, i, j int) bool {
	return (i == 0 || !wordClass[s[i-1]]) && (j == len(s) || !wordClass[s[j]])
}

func trimDots(s string, i, j int) int {
	for j > i && s[j-1] == '.' {
		j--
	}
	return j
}

// emailRule: local@domain, the domain with at least one dot and a top-level
// label of two or more letters.
var emailRule = runRule(emailClass, len("a@b.cd"), hasByte('@'), func(s string, i, j int) (int, int, bool) {
	j = trimDots(s, i, j)
	at := strings.LastIndexByte(s[i:j], '@')
	if at <= 0 {
		return 0, 0, false
	}
	if !hostname(s[i+at+1 : j]) {
		return 0, 0, false
	}
	return i, j, true
})

// hostname reports whether d looks like a DNS name with a letter-only TLD.
func hostname(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 {
		return false
	}
	for i := dot + 1; i < len(d); i++ {
		if c := d[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	prev := byte('.')
	for i := 0; i < len(d); i++ {
		c := d[i]
		switch {
		case c == '.':
			if prev == '.' {
				return false // empty label
			}
		case c == '-', '0' <= c && c <= '9', 'a' <= c|0x20 && c|0x20 <= 'z':
		default:
			return false
		}
		prev = c
	}
	return true
}

// ipv4Rule: a dotted quad, each part at most 255, not glued to a word.
var ipv4Rule = runRule(ipv4Class, len("1.2.3.4"), hasByte('.'), func(s string, i, j int) (int, int, bool) {
	j = trimDots(s, i, j)
	if j-i < 7 || !wordBoundary(s, i, j) || !ipv4(s[i:j]) {
		return 0, 0, false
	}
	return i, j, true
})

func ipv4(s string) bool {
	parts, n, v := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if n == 0 || n > 3 || v > 255 {
				return false
			}
			parts++
			n, v = 0, 0
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n++
		v = v*10 + int(s[i]-'0')
	}
	return parts == 4
}

// ipv6Rule: an RFC 4291 text address (with :: and a dotted-quad tail), not
// glued to a word, holding at least one hex digit.
var ipv6Rule = runRule(ipv6Class, len("::1"), hasByte(':'), func(s string, i, j int) (int, int, bool) {
	// "ip:2001:db8::1": a single leading ':' is punctuation, not address.
	if j-i > 1 && s[i] == ':' && s[i+1] != ':' {
		i++
	}
	j = trimDots(s, i, j)
	if j-i > 2 && s[j-1] == ':' && s[j-2] != ':' {
		j-- // "fe80::1: timeout"
	}
	if j-i < 3 || !wordBoundary(s, i, j) || !ipv6(s[i:j]) {
		return 0, 0, false
	}
	return i, j, true
})

func ipv6(s string) bool {
	if strings.Count(s, ":") < 2 || !strings.ContainsAny(s, "0123456789abcdefABCDEF") {
		return false
	}
	groups, compressed := 0, false
	i := 0
	if strings.HasPrefix(s, "::") {
		compressed, i = true, 2
		if i == len(s) {
			return false
		}
	} else if s[0] == ':' {
		return false
	}
	for i < len(s) {
		k := i
		for k < len(s) && s[k] != ':' {
			k++
		}
		g := s[i:k]
		if strings.IndexByte(g, '.') >= 0 {
			if k != len(s) || !ipv4(g) {
				return false
			}
			groups += 2
		} else {
			if len(g) == 0 || len(g) > 4 {
				return false
			}
			for x := 0; x < len(g); x++ {
				if !ipv6Class[g[x]] || g[x] == '.' || g[x] == ':' {
					return false
				}
			}
			groups++
		}
		if k == len(s) {
			break
		}
		// s[k] == ':'
		if k+1 < len(s) && s[k+1] == ':' {
			if compressed {
				return false
			}
			compressed = true
			i = k + 2
			if i == len(s) {
				break
			}
			continue
		}
		if k+1 == len(s) {
			return false // trailing single ':'
		}
		i = k + 1
	}
	if compressed {
		return groups <= 7
	}
	return groups == 8
}

// jwtRule: header.payload.signature, header and payload base64url JSON
// objects (so they start with "eyJ"), the signature possibly empty.
var jwtRule = runRule(jwtClass, len("eyJa.eyJb."), func(s string) bool { return strings.Contains(s, "eyJ") }, func(s string, i, j int) (int, int, bool) {
	t := s[i:j]
	if len(t) > 1 && t[len(t)-1] == '.' && strings.Count(t, ".") == 3 {
		t = t[:len(t)-1] // sentence-ending dot after a signed token
	}
	d1 := strings.IndexByte(t, '.')
	if d1 < 4 || !strings.HasPrefix(t, "eyJ") {
		return 0, 0, false
	}
	rest := t[d1+1:]
	d2 := strings.IndexByte(rest, '.')
	if d2 < 4 || !strings.HasPrefix(rest, "eyJ") || strings.IndexByte(rest[d2+1:], '.') >= 0 {
		return 0, 0, false
	}
	return i, i + len(t), true
})

// bearerRule: the token after "Bearer " (any case, one or more spaces), when
// it is at least 8 bytes long, so prose like "a Bearer token" survives.
func bearerRule(s string) (string, bool) {
	sp := splice{s: s}
	for i := 0; i+7 < len(s); i++ {
		if s[i]|0x20 != 'b' || !hasFoldPrefix(s[i:], "bearer") || (i > 0 && wordClass[s[i-1]]) {
			continue
		}
		a := i + 6
		if s[a] != ' ' {
			continue
		}
		for a < len(s) && s[a] == ' ' {
			a++
		}
		b := a
		for b < len(s) && tokenClass[s[b]] {
			b++
		}
		if b-a < 8 || s[a:b] == Redacted {
			i = b - 1
			continue
		}
		sp.replace(a, b, Redacted)
		i = b - 1
	}
	return sp.String(), sp.edited()
}

// cardRule: 13-19 digits in groups joined by single spaces or dashes,
// Luhn-valid, and (unlike the URL rule) not starting with 0, 1, 7 or 9: log
// text is full of epoch milliseconds and counters, and no card network issues
// those. Every window of consecutive groups is tried, so "order 12 4111 1111
// 1111 1111" loses only the card.
var cardRule = runRule(cardClass, 13, enoughDigits, func(s string, i, j int) (int, int, bool) {
	for p := i; p < j; {
		if !isDigit(s[p]) {
			p++
			continue
		}
		// Extend from group start p over following groups while ≤ 19 digits.
		digits := 0
		q := p
		for {
			e := q
			for e < j && isDigit(s[e]) {
				e++
			}
			digits += e - q
			if digits > 19 {
				break
			}
			if digits >= 13 && cardDigits(s[p:e]) {
				return p, e, true
			}
			if e+1 < j && (s[e] == ' ' || s[e] == '-') && isDigit(s[e+1]) {
				q = e + 1
				continue
			}
			break
		}
		// Next group start.
		for p < j && isDigit(s[p]) {
			p++
		}
	}
	return 0, 0, false
})

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// cardDigits checks a digit string (separators allowed) for the text card
// rule: 13-19 digits, a plausible issuer digit, Luhn-valid.
func cardDigits(s string) bool {
	n := 0
	first := byte(0)
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			if n == 0 {
				first = s[i]
			}
			n++
		}
	}
	if n < 13 || n > 19 {
		return false
	}
	switch first {
	case '0', '1', '7', '9':
		return false
	}
	return luhn(s)
}
