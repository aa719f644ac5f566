// Package redact removes secrets from TraceItems before they are stored.
//
// The default policy is the Workers runtime's own, byte for byte (the runtime
// is the oracle; see URL and SensitiveHeader): header values by header name,
// and ID-like runs in event.request.url. Extra rules (Rules) are opt-in: query
// parameters by name, and emails, IP addresses, bearer tokens, JWTs and card
// numbers inside log messages, exception messages and stacks.
//
// Every function here is pure, safe for concurrent use, idempotent (redacting
// twice gives the same result as once) and allocation-free when nothing
// matches: the input string itself is returned. Router turns URLs into
// bounded-cardinality route templates for the rollups.
//
// The package exports no metrics.
package redact

// Version is the redaction policy version stored with each row
// (trace_items.redaction_version). Bump it whenever the default policy's
// output can change.
const Version uint16 = 1

// Redacted replaces every redacted value.
const Redacted = "REDACTED"

// Byte classes of the URL rules.
const (
	cUpper = 1 << iota
	cLower
	cDigit
	cHex // 0-9 a-f A-F
	cSep // + - _
)

// idClass classifies the bytes that make up an ID run in a URL; 0 ends a run.
var idClass = func() (t [256]uint8) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cUpper
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cLower
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cDigit | cHex
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= cHex
		t[c-'a'+'A'] |= cHex
	}
	t['+'], t['-'], t['_'] = cSep, cSep, cSep
	return t
}()

// minRedactRun is the shortest run any URL rule can redact: a card number
// has at least 13 digits, a base-64 ID 21 bytes, a hex ID 32 digits.
const minRedactRun = 13

// URL applies the runtime's URL redaction to s, the whole URL from scheme to
// query. One byte-wise pass splits s into maximal runs of A-Z a-z 0-9 + - _;
// every other byte is copied through. A run becomes REDACTED when
//
//  1. it has at least 32 hex digits and no letter outside a-f A-F (hex ID);
//  2. it is at least 21 bytes long (separators included) with at least two
//     digits, two upper-case and two lower-case letters (base-64 ID); or
//  3. it holds only digits and separators, 13 to 19 digits, and passes the
//     Luhn check, digits taken right to left with separators skipped (card).
//
// URL returns s itself, without allocating, when no run matches.
func URL(s string) string {
	sp := splice{s: s}
	// Only runs of minRedactRun bytes or more can match, so look for a window
	// of that many ID bytes, checking it from its far end: a non-ID byte
	// there skips the whole window (Boyer-Moore style). Invariant: i == 0 or
	// s[i-1] is not an ID byte, so a full window starting at i starts a run.
	for i := 0; i+minRedactRun <= len(s); {
		q := i + minRedactRun - 1
		for q >= i && idClass[s[q]] != 0 {
			q--
		}
		if q >= i {
			i = q + 1
			continue
		}
		j := i + minRedactRun
		for j < len(s) && idClass[s[j]] != 0 {
			j++
		}
		if sensitiveRun(s[i:j]) {
			sp.replace(i, j, Redacted)
		}
		i = j + 1
	}
	return sp.String()
}

// runCount packs per-byte increments of four 16-bit counters (upper, lower,
// digit, hex digit), so counting a run is one load and one add per byte.
var runCount = func() (t [256]uint64) {
	for c := range 256 {
		k := idClass[c]
		if k&cUpper != 0 {
			t[c] |= 1
		}
		if k&cLower != 0 {
			t[c] |= 1 << 16
		}
		if k&cDigit != 0 {
			t[c] |= 1 << 32
		}
		if k&cHex != 0 {
			t[c] |= 1 << 48
		}
	}
	return t
}()

// sensitiveRun reports whether a maximal ID run matches one of the three URL
// rules.
func sensitiveRun(r string) bool {
	var upper, lower, digit, hex int
	for rest := r; len(rest) > 0; {
		n := min(len(rest), 1<<15) // below 1<<16: no lane overflows
		var acc uint64
		for i := 0; i < n; i++ {
			acc += runCount[rest[i]]
		}
		upper += int(acc & 0xffff)
		lower += int(acc >> 16 & 0xffff)
		digit += int(acc >> 32 & 0xffff)
		hex += int(acc >> 48)
		rest = rest[n:]
	}
	letters, hexLetters := upper+lower, hex-digit
	switch {
	case hex >= 32 && letters == hexLetters:
		return true
	case len(r) >= 21 && digit >= 2 && upper >= 2 && lower >= 2:
		return true
	case letters == 0 && digit >= 13 && digit <= 19:
		return luhn(r)
	}
	return false
}

// luhn checks the Luhn sum of the digits in r, taken right to left, every
// second one doubled; other bytes (separators) are skipped.
func luhn(r string) bool {
	sum, n := 0, 0
	for i := len(r) - 1; i >= 0; i-- {
		c := r[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if n&1 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return sum%10 == 0
}

// SensitiveHeader reports whether the runtime redacts the value of the header
// called name: exactly "cookie" or "set-cookie", or a name containing "auth",
// "jwt", "key", "secret" or "token" (so "monkey" and "sec-websocket-key" are
// sensitive, "x-cookie" and "x-password" are not). The runtime records names in
// lower case and compares bytes; names are compared here ignoring ASCII case,
// which gives the same answer for lower-case names and a safe one for others.
func SensitiveHeader(name string) bool {
	if (len(name) == len("cookie") && hasFoldPrefix(name, "cookie")) ||
		(len(name) == len("set-cookie") && hasFoldPrefix(name, "set-cookie")) {
		return true
	}
	for i := 0; i < len(name); i++ {
		// ASCII lower case; bytes that are no word's first letter find "".
		if w := sensitiveWords[name[i]|0x20]; w != "" && hasFoldPrefix(name[i:], w) {
			return true
		}
	}
	return false
}

// sensitiveWords are the words SensitiveHeader looks for in a name, by
// their first letter (no two share one).
var sensitiveWords = [256]string{'a': "auth", 'j': "jwt", 'k': "key", 's': "secret", 't': "token"}

// hasFoldPrefix reports whether s starts with the lower-case ASCII word w,
// ignoring ASCII case.
func hasFoldPrefix(s, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}

// HeaderValue returns the value the runtime records for a request header:
// REDACTED when SensitiveHeader(name), else value unchanged. Header values are
// never run through the URL rules.
func HeaderValue(name, value string) string {
	if SensitiveHeader(name) {
		return Redacted
	}
	return value
}
