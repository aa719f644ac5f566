package workerd

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// genCase is one request: a request target (path and query, sent verbatim)
// and extra headers (names sent as written; the runtime lower-cases them).
type genCase struct {
	target  string
	headers [][2]string
}

// genCases returns n deterministic cases aimed at the edges of the runtime's
// redaction rules: hex IDs around 32 digits, base-64-like runs around 21
// characters and two of each character class, card numbers of 11–21 digits
// with and without a valid Luhn digit, separators (+ - _) everywhere, and
// header names around auth/jwt/key/secret/token/cookie.
func genCases(r *rand.Rand, n int) []genCase {
	out := make([]genCase, n)
	for i := range out {
		out[i] = genCase{target: genTarget(r), headers: genHeaders(r)}
	}
	return out
}

func genTarget(r *rand.Rand) string {
	var b strings.Builder
	for i := range 1 + r.IntN(4) {
		b.WriteByte('/')
		tok := genToken(r)
		if i == 0 && tok == "" {
			tok = "root" // the runtime answers 400 to a target starting with "//"
		}
		b.WriteString(tok)
	}
	switch r.IntN(10) {
	case 0:
		b.WriteByte('/') // trailing slash
	case 1:
		b.WriteString("//" + genToken(r)) // empty segment
	}
	if r.IntN(3) > 0 {
		b.WriteByte('?')
		for j := range 1 + r.IntN(3) {
			if j > 0 {
				b.WriteByte('&')
			}
			b.WriteString(pick(r, queryNames))
			if r.IntN(8) > 0 {
				b.WriteByte('=')
				b.WriteString(genToken(r))
			}
		}
	}
	if r.IntN(20) == 0 {
		// Sent raw; the runtime drops the fragment before anyone sees the URL.
		b.WriteString("#" + genToken(r))
	}
	return b.String()
}

var (
	words      = []string{"api", "v1", "v2", "users", "orders", "items", "search", "index.html", "report-2024.pdf", "secret", "token", "key", "session", "a", "", "Hello_World", "foo+bar", "x-y-z", "~tilde", "caf%C3%A9", "a.b.c", "%2F"}
	queryNames = []string{"id", "q", "session", "token", "key", "page", "card", "cc", "ref", "utm_source", "sig", "a"}
	seps       = "-_+"
	hexLower   = "0123456789abcdef"
	hexUpper   = "0123456789ABCDEF"
	digits     = "0123456789"
	uppers     = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lowers     = "abcdefghijklmnopqrstuvwxyz"
	idChars    = digits + uppers + lowers + seps
)

// genToken returns one path segment or query value.
func genToken(r *rand.Rand) string {
	switch r.IntN(16) {
	case 0, 1:
		return genHex(r)
	case 2:
		return genUUID(r)
	case 3, 4:
		return genBase64ish(r)
	case 5, 6:
		return genCard(r)
	case 7:
		return strconv.FormatUint(r.Uint64N(1_000_000_000_000), 10)
	case 8:
		return genRun(r, idChars, 1+r.IntN(40))
	case 9:
		// Two runs joined by a non-ID byte, each short of a rule on its own.
		return genHex(r) + pick(r, []string{".", "~", "%2D", "%20", ",", ":", "@", "=", "*", "|", "^", "{", "}", "[", "]", "'", "\\", "%", "%zz", "%7e", "é", "/../", "/./"}) + genHex(r)
	default: // 6 in 16: plain words keep about a third of the URLs unredacted
		return pick(r, words)
	}
}

// genHex returns hex digits around the 32-digit threshold, in mixed case,
// sometimes with separators or one non-hex letter.
func genHex(r *rand.Rand) string {
	n := pick(r, []int{8, 16, 24, 30, 31, 32, 32, 33, 36, 40, 48, 64})
	alpha := hexLower
	if r.IntN(4) == 0 {
		alpha = hexUpper
	}
	b := []byte(genRun(r, alpha, n))
	if r.IntN(6) == 0 {
		b[r.IntN(len(b))] = "gGzZxX"[r.IntN(6)] // no longer hex
	}
	return string(insertSeps(r, b, r.IntN(4)))
}

func genUUID(r *rand.Rand) string {
	h := genRun(r, hexLower, 32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// genBase64ish returns a run around 21 characters with 0–3 (or many) of each
// character class, so the "two digits, two upper, two lower" rule is probed.
func genBase64ish(r *rand.Rand) string {
	counts := func() int { return pick(r, []int{0, 1, 2, 2, 3, 6}) }
	var b []byte
	b = append(b, genRun(r, digits, counts())...)
	b = append(b, genRun(r, uppers, counts())...)
	b = append(b, genRun(r, lowers, counts())...)
	target := 15 + r.IntN(14) // 15..28
	fill := pick(r, []string{lowers, uppers, digits, seps})
	for len(b) < target {
		b = append(b, fill[r.IntN(len(fill))])
	}
	r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	return string(b)
}

// genCard returns 11–21 digits, Luhn-valid about half the time, grouped with
// separators (or spaces sent as %20, which end the run) or not.
func genCard(r *rand.Rand) string {
	n := 11 + r.IntN(11)
	d := []byte(genRun(r, digits, n))
	d[len(d)-1] = '0'
	check := luhnCheck(d)
	if r.IntN(2) == 0 {
		d[len(d)-1] = '0' + byte((10-check)%10) // valid
	} else {
		d[len(d)-1] = '0' + byte((10-check+1+r.IntN(9))%10) // invalid
	}
	switch r.IntN(5) {
	case 0:
		return string(d)
	case 1:
		return group(d, "-")
	case 2:
		return group(d, "%20")
	default:
		return string(insertSeps(r, d, 1+r.IntN(4)))
	}
}

// luhnCheck is the Luhn sum mod 10 of d.
func luhnCheck(d []byte) int {
	sum := 0
	for i := range d {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum % 10
}

func group(d []byte, sep string) string {
	var b strings.Builder
	for i, c := range d {
		if i > 0 && i%4 == 0 {
			b.WriteString(sep)
		}
		b.WriteByte(c)
	}
	return b.String()
}

func insertSeps(r *rand.Rand, b []byte, k int) []byte {
	for range k {
		i := r.IntN(len(b) + 1)
		b = append(b[:i], append([]byte{seps[r.IntN(len(seps))]}, b[i:]...)...)
	}
	return b
}

func genRun(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// Header names: the runtime's keywords, near misses, and names it must leave
// alone. Sent with their case varied.
var headerNames = []string{
	"authorization", "proxy-authorization", "x-auth-token", "author", "oauth-state", "x-authorized",
	"x-jwt", "jwt-assertion", "x-jw-t",
	"x-api-key", "api_key", "apikey", "monkey", "donkey", "keyboard", "sec-websocket-key", "x-ke-y",
	"x-secret", "client_secret", "secretary", "x-secre",
	"x-token", "tokenizer", "x-csrf-token", "x-amz-security-token", "x-toke",
	"cookie", "set-cookie", "x-cookie", "cookies", "cookie2", "xcookie", "cookie-policy",
	"x-password", "password", "x-session", "x-request-id", "accept-language", "x-forwarded-for",
	"referer", "x-trace", "if-none-match", "dnt",
}

var nameFragments = []string{"auth", "aut", "jwt", "jw", "key", "ke", "secret", "secre", "token", "toke", "cookie", "cook", "pass", "id", "x", "api"}

func genHeaders(r *rand.Rand) [][2]string {
	used := map[string]bool{caseHeader: true}
	var out [][2]string
	for range 3 + r.IntN(6) {
		var name string
		if r.IntN(2) == 0 {
			name = pick(r, headerNames)
		} else {
			name = genHeaderName(r)
		}
		if used[strings.ToLower(name)] {
			continue
		}
		used[strings.ToLower(name)] = true
		out = append(out, [2]string{varyCase(r, name), genHeaderValue(r)})
	}
	return out
}

// genHeaderName builds a random token name that may embed a keyword fragment.
func genHeaderName(r *rand.Rand) string {
	parts := []string{genRun(r, lowers, 1+r.IntN(5))}
	if r.IntN(3) > 0 {
		parts = append(parts, pick(r, nameFragments))
	}
	if r.IntN(2) == 0 {
		parts = append(parts, genRun(r, lowers+digits, 1+r.IntN(4)))
	}
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	sep := pick(r, []string{"-", "_", "", "."})
	return "x" + sep + strings.Join(parts, sep)
}

func varyCase(r *rand.Rand, s string) string {
	switch r.IntN(4) {
	case 0:
		return strings.ToUpper(s)
	case 1:
		b := []byte(s)
		for i := range b {
			if r.IntN(2) == 0 && b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
		return string(b)
	default:
		return s
	}
}

// genHeaderValue returns values that the URL rules would redact, among
// others: header values must never go through them.
func genHeaderValue(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0:
		return genHex(r)
	case 1:
		return genCard(r)
	case 2:
		return "Bearer " + genBase64ish(r) + "." + genBase64ish(r)
	case 3:
		return "sid=" + genUUID(r) + "; theme=dark"
	case 4:
		return pick(r, []string{"en-US,en;q=0.9", "1", "no-cache", "W/\"abc\"", "hello world", "x"})
	case 5:
		return "https://example.com/p/" + genHex(r) + "?t=" + genBase64ish(r)
	default:
		return genRun(r, idChars+" .,;=/", 1+r.IntN(50))
	}
}
