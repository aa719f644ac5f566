package redact

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"unsafe"

	"github.com/taillight/taillight/internal/flagx"
	"github.com/taillight/taillight/schemas"
)

// Rules are the opt-in redaction rules added to the default (runtime) policy.
// The zero value turns every extra rule off.
type Rules struct {
	// QueryParams names query parameters whose values become REDACTED in
	// event.request.url. Names are compared with the raw (still
	// percent-encoded) parameter name, ignoring ASCII case. Default: none.
	QueryParams []string
	// Emails, IPs (IPv4 and IPv6), BearerTokens ("Bearer <token>"), JWTs and
	// CardNumbers (Luhn-valid, 13-19 digits, not starting with 0, 1, 7 or 9)
	// turn on the text rules for log messages and their errorInfo (JSON
	// string values only; a bare JSON integer that is a card number becomes
	// the string "REDACTED"), exception messages and stacks, and
	// diagnostics-channel messages. Default: off.
	Emails, IPs, BearerTokens, JWTs, CardNumbers bool
}

// DefaultQueryParams is a starting list of query parameter names that commonly
// carry credentials; `taillight redact -rules` uses it when no list is given.
var DefaultQueryParams = []string{
	"access_token", "api_key", "apikey", "auth", "code", "id_token", "key",
	"password", "passwd", "pwd", "refresh_token", "secret", "session",
	"sessionid", "sig", "signature", "token",
}

// RegisterFlags registers one flag per rule, named prefix+"query-params"
// (comma-separated; each use replaces the list), prefix+"emails",
// prefix+"ips", prefix+"bearer-tokens", prefix+"jwts" and
// prefix+"card-numbers".
func (r *Rules) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.Var((*flagx.List)(&r.QueryParams), prefix+"query-params", "comma-separated query parameter names whose values are redacted in request URLs (default none)")
	fs.BoolVar(&r.Emails, prefix+"emails", r.Emails, "redact email addresses in log messages, exceptions and stacks")
	fs.BoolVar(&r.IPs, prefix+"ips", r.IPs, "redact IPv4 and IPv6 addresses in log messages, exceptions and stacks")
	fs.BoolVar(&r.BearerTokens, prefix+"bearer-tokens", r.BearerTokens, "redact the token after \"Bearer \" in log messages, exceptions and stacks")
	fs.BoolVar(&r.JWTs, prefix+"jwts", r.JWTs, "redact JSON Web Tokens in log messages, exceptions and stacks")
	fs.BoolVar(&r.CardNumbers, prefix+"card-numbers", r.CardNumbers, "redact Luhn-valid card numbers in log messages, exceptions and stacks")
}

// AllText turns on every text rule (emails, IPs, bearer tokens, JWTs, card
// numbers).
func (r *Rules) AllText() {
	r.Emails, r.IPs, r.BearerTokens, r.JWTs, r.CardNumbers = true, true, true, true, true
}

// Validate checks the query parameter names.
func (r *Rules) Validate() error {
	for _, n := range r.QueryParams {
		if n == "" {
			return errors.New("redact: empty query parameter name")
		}
		if strings.ContainsAny(n, "&=#?") {
			return fmt.Errorf("redact: query parameter name %q must not contain any of & = # ?", n)
		}
	}
	return nil
}

// Policy applies the default policy plus a set of Rules. It is immutable
// after New and safe for concurrent use.
type Policy struct {
	params []string
	rules  []textRule // enabled text rules, in order
	cards  bool
}

// New returns the policy for r; the zero Rules give the runtime's policy.
func New(r Rules) (*Policy, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{params: append([]string(nil), r.QueryParams...), cards: r.CardNumbers}
	// JWTs and bearer tokens first: their tokens may contain dots and digits
	// the other rules would redact piecemeal.
	if r.JWTs {
		p.rules = append(p.rules, jwtRule)
	}
	if r.BearerTokens {
		p.rules = append(p.rules, bearerRule)
	}
	if r.Emails {
		p.rules = append(p.rules, emailRule)
	}
	if r.IPs {
		p.rules = append(p.rules, ipv6Rule, ipv4Rule)
	}
	if r.CardNumbers {
		p.rules = append(p.rules, cardRule)
	}
	return p, nil
}

// Item redacts t in place: event.request.url (URL, then the query parameter
// rule), event.request.headers values (HeaderValue), and with text rules on,
// log messages and their errorInfo, exception messages and stacks, and
// diagnostics-channel messages. Replaced values are new strings or slices;
// no string or raw JSON t holds is written through, so the bytes an item
// decoded with schemas.Decoder.DecodeZeroCopy aliases stay intact. Item does not
// allocate when nothing matches.
func (p *Policy) Item(t *schemas.TraceItem) {
	if e := t.Event; e != nil && e.Request != nil {
		r := e.Request
		r.URL = p.URL(r.URL)
		for i := range r.Headers {
			if h := &r.Headers[i]; h.Value != Redacted && SensitiveHeader(h.Name) {
				h.Value = Redacted
			}
		}
	}
	if len(p.rules) == 0 {
		return
	}
	for i := range t.Logs {
		l := &t.Logs[i]
		if m, ok := p.json(l.Message); ok {
			l.Message = m
		}
		if m, ok := p.json(l.ErrorInfo); ok {
			l.ErrorInfo = m
		}
	}
	for i := range t.Exceptions {
		x := &t.Exceptions[i]
		x.Message = p.Text(x.Message)
		x.Stack = p.Text(x.Stack)
	}
	for i := range t.DiagnosticsChannelEvents {
		if m, ok := p.json(t.DiagnosticsChannelEvents[i].Message); ok {
			t.DiagnosticsChannelEvents[i].Message = m
		}
	}
}

// URL applies the runtime's URL rules, then the query parameter rule.
func (p *Policy) URL(s string) string {
	s = URL(s)
	if len(p.params) == 0 {
		return s
	}
	return p.query(s)
}

// query replaces the values of the configured query parameters.
func (p *Policy) query(u string) string {
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	end := len(u)
	if h := strings.IndexByte(u[q:], '#'); h >= 0 {
		end = q + h
	}
	sp := splice{s: u}
	for i := q + 1; i < end; {
		j := i + strings.IndexByte(u[i:end], '&')
		if j < i {
			j = end
		}
		if eq := strings.IndexByte(u[i:j], '='); eq >= 0 {
			name, vs := u[i:i+eq], i+eq+1
			if v := u[vs:j]; v != "" && v != Redacted && p.param(name) {
				sp.replace(vs, j, Redacted)
			}
		}
		i = j + 1
	}
	return sp.String()
}

func (p *Policy) param(name string) bool {
	for _, n := range p.params {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Text applies the enabled text rules to s, returning s itself when nothing
// matches. The rules run to a fixed point (bounded), so Text is idempotent
// even where one rule's REDACTED completes another's match.
func (p *Policy) Text(s string) string { return fixedPoint(s, p.rules) }

// json redacts inside the string values of the JSON text b (object keys are
// kept) and, with the card rule, replaces integers that are card numbers with
// the string "REDACTED". It returns a new slice and true when anything
// changed; b is never written. Escape sequences split a string into segments
// the rules see separately, so a replacement can never break an escape.
func (p *Policy) json(b []byte) ([]byte, bool) {
	var out []byte
	last := 0 // b[:last] is already in out
	emit := func(from, to int, repl string) {
		if out == nil {
			out = make([]byte, 0, len(b)+16)
		}
		out = append(out, b[last:from]...)
		out = append(out, repl...)
		last = to
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			j := i + 1
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return b, false // unterminated: not JSON, leave it alone
			}
			if isKey(b, j+1) {
				i = j
				continue
			}
			seg := i + 1
			for k := seg; k <= j; {
				if k < j && b[k] != '\\' {
					k++
					continue
				}
				if k > seg {
					v := unsafe.String(&b[seg], k-seg) // read-only view, not kept
					if r := p.Text(v); len(r) != len(v) || r != v {
						emit(seg, k, r)
					}
				}
				if k == j {
					break
				}
				if k+1 < j && b[k+1] == 'u' {
					k += 6
				} else {
					k += 2
				}
				seg = k
			}
			i = j
		case p.cards && (c == '-' || '0' <= c && c <= '9'):
			j := i + 1
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
				j++
			}
			digits := b[i:j]
			if c == '-' {
				digits = digits[1:]
			}
			if len(digits) > 0 && allDigits(digits) && cardDigits(unsafe.String(&digits[0], len(digits))) {
				emit(i, j, `"`+Redacted+`"`)
			}
			i = j - 1
		}
	}
	if out == nil {
		return b, false
	}
	return append(out, b[last:]...), true
}

// isKey reports whether the string ending before b[k] is an object key.
func isKey(b []byte, k int) bool {
	for ; k < len(b); k++ {
		switch b[k] {
		case ' ', '\t', '\n', '\r':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
