package redact

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/taillight/taillight/schemas"
)

// fixturesDir holds the runtime's own samples (see /work/shared/fixtures).
const fixturesDir = "../../../shared/fixtures"

func TestURL(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := URL(in); got != want {
			t.Fatalf("URL(%q) = %q; want %q", in, got, want)
		}
		if again := URL(want); again != want {
			t.Fatalf("URL(%q) is not idempotent: %q", want, again)
		}
	}
	f("", "")
	f("/", "/")
	f("https://a.dev/x?token=s3cr3t", "https://a.dev/x?token=s3cr3t") // names are not the default policy
	// hex IDs: 32 hex digits, separators anywhere, no letter beyond f.
	f("https://h/0123456789abcdef0123456789abcdef", "https://h/REDACTED")
	f("https://h/0123456789ABCDEF0123456789ABCDEF", "https://h/REDACTED")
	f("https://h/01234567-89ab-cdef-0123-456789abcdef", "https://h/REDACTED") // UUID
	f("https://h/_0123456789abcdef+0123456789abcdef-", "https://h/REDACTED")
	f("https://h/0123456789abcdef0123456789abcdeg", "https://h/0123456789abcdef0123456789abcdeg")
	// 31 hex digits plus separators is still too few.
	f("https://h/0123456789abcdef-0123456789abcde-", "https://h/0123456789abcdef-0123456789abcde-")
	// base-64 IDs: 21 bytes with two each of digits, upper, lower.
	f("https://h/aaaaaaaaaaaaaaaaaAB12", "https://h/REDACTED")
	f("https://h/aaaaaaaaaaaaaaaaaaAB1", "https://h/aaaaaaaaaaaaaaaaaaAB1")
	f("https://h/aaaaaaaaaaaaaaa-_-aAB12", "https://h/REDACTED")          // separators count toward the length
	f("https://h/aaaaaaaaaaaaaaaaAB12", "https://h/aaaaaaaaaaaaaaaaAB12") // 20 bytes
	// The whole URL is one string: the scheme and host are runs too.
	f("https://aaaaaaaaaaaaaaaaaAB12.example/x", "https://REDACTED.example/x")
	f("aaaaaaaaaaaaaaaaaAB12", "REDACTED")
	// Non-ID bytes split runs: '.', '/', '=', '%', '~', '&', non-ASCII.
	f("https://h/x?a=aaaaaaaaaa.aaaaaaaAB12", "https://h/x?a=aaaaaaaaaa.aaaaaaaAB12")
	f("https://h/%41aaaaaaaaaaaaaaaaaAB12", "https://h/%REDACTED") // "41aaa…AB12" is one run
	f("https://h/aaaaaaaaaaaaaaaaa%41AB12", "https://h/aaaaaaaaaaaaaaaaa%41AB12")
	f("https://h/é0123456789abcdef0123456789abcdef", "https://h/éREDACTED")
	f("https://h/a~0123456789abcdef0123456789abcdef~b", "https://h/a~REDACTED~b")
	// Two matches in one URL, and a match at each end.
	f("0123456789abcdef0123456789abcdef/4111111111111111", "REDACTED/REDACTED")
	// REDACTED itself is a plain run: stable.
	f("https://h/REDACTED/REDACTED?x=REDACTED", "https://h/REDACTED/REDACTED?x=REDACTED")
	// A NUL byte or invalid UTF-8 is copied through.
	f("https://h/\x00\xff4111111111111111", "https://h/\x00\xffREDACTED")
}

func TestURLCards(t *testing.T) {
	f := func(in string, redacted bool) {
		t.Helper()
		u := "https://h/p?n=" + in
		want := u
		if redacted {
			want = "https://h/p?n=REDACTED"
		}
		if got := URL(u); got != want {
			t.Fatalf("URL(%q) = %q; want %q", u, got, want)
		}
	}
	// Luhn boundaries: 12 and 20 digits never match, 13 and 19 do when valid.
	f("411111111117", false)         // 12 digits (Luhn-valid)
	f("4222222222222", true)         // 13
	f("4222222222223", false)        // 13, Luhn-invalid
	f("4000000000000000006", true)   // 19
	f("4000000000000000007", false)  // 19, Luhn-invalid
	f("40000000000000000002", false) // 20, Luhn-valid
	f("0000000000000", true)         // 13 zeros: Luhn-valid, the runtime redacts it
	// Separators are skipped by Luhn and count in no rule but the length.
	f("4111-1111-1111-1111", true)
	f("4111_1111_1111_1111", true)
	f("4111+1111+1111+1111", true)
	f("-4111-1111-1111-1111-", true)
	f("4111--1111--1111--1111", true)
	f("4111-1111-1111-1112", false)
	// A letter makes it no card; 16 digits is not enough for hex.
	f("4111111111111111a", false)
	// A space (encoded or not) splits the run.
	f("4111%201111%201111%201111", false)
	f("4111 1111 1111 1111", false)
	// 79927398713 is the textbook Luhn-valid number, 11 digits: too short.
	// Luhn runs right to left, so leading zeros keep it valid.
	f("79927398713", false)
	f("0079927398713", true)
	f("00079927398713", true)
	f("79927398713000", false) // an odd number of trailing zeros shifts the doubling
	f("7992739871300", true)
}

// Runs longer than the 16-bit counters of sensitiveRun are counted in chunks.
func TestURLLongRuns(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("0", 1<<16),          // 65536 digits: hex ID
		strings.Repeat("a", 1<<16) + "g",    // hex digits, then a letter past f
		strings.Repeat("a", 1<<16) + "AB12", // base-64 ID
		strings.Repeat("Z", 1<<17+3) + "a1", // one digit short of base-64
		"/" + strings.Repeat("a_", 40000) + "/x",
	} {
		got, want := URL(in), refURL(in)
		if got != want {
			t.Errorf("URL(%d bytes %.20q…) = %.30q (%d bytes); want %.30q (%d bytes)", len(in), in, got, len(got), want, len(want))
		}
	}
}

func TestURLVectors(t *testing.T) {
	f, err := os.Open(filepath.Join(fixturesDir, "redaction_unit_vectors.jsonl"))
	if err != nil {
		t.Fatalf("the runtime's redaction vectors are required: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var v struct{ Kind, Input, Expected string }
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("vector %d: %v", n+1, err)
		}
		if v.Kind != "url" {
			t.Fatalf("vector %d: unknown kind %q", n+1, v.Kind)
		}
		n++
		if got := URL(v.Input); got != v.Expected {
			t.Errorf("URL(%q) = %q; want %q", v.Input, got, v.Expected)
		}
		if got := URL(v.Expected); got != v.Expected {
			t.Errorf("URL(%q) is not idempotent: %q", v.Expected, got)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d vectors read", n)
	}
}

func TestSensitiveHeader(t *testing.T) {
	f := func(name string, want bool) {
		t.Helper()
		if got := SensitiveHeader(name); got != want {
			t.Fatalf("SensitiveHeader(%q) = %v; want %v", name, got, want)
		}
		wantV := "v"
		if want {
			wantV = Redacted
		}
		if got := HeaderValue(name, "v"); got != wantV {
			t.Fatalf("HeaderValue(%q, v) = %q; want %q", name, got, wantV)
		}
	}
	f("cookie", true)
	f("set-cookie", true)
	f("authorization", true)
	f("proxy-authorization", true)
	f("x-auth", true)
	f("oauth", true)
	f("x-jwt-assertion", true)
	f("x-api-key", true)
	f("monkey", true)
	f("sec-websocket-key", true)
	f("keyboard", true)
	f("client-secret", true)
	f("x-csrf-token", true)
	f("tokens", true)
	f("Authorization", true) // not what the runtime records, but never let it through
	f("COOKIE", true)
	f("x-cookie", false)
	f("cookies", false)
	f("set-cookie2", false)
	f("x-password", false)
	f("accept", false)
	f("host", false)
	f("user-agent", false)
	f("content-type", false)
	f("sec-websocket-version", false)
	f("x-ke-y", false)
	f("jw", false)
	f("", false)
	// Header values are never run through the URL rules.
	if got := HeaderValue("x-case-id", "0123456789abcdef0123456789abcdef"); got != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("HeaderValue ran URL rules: %q", got)
	}
}

// refURL is an independent, slow implementation of the URL rules (regexp
// runs, per-rule predicates) that FuzzURL checks URL against.
var runRE = regexp.MustCompile(`[A-Za-z0-9+\-_]+`)

func refURL(s string) string {
	return runRE.ReplaceAllStringFunc(s, func(r string) string {
		count := func(pred func(byte) bool) int {
			n := 0
			for i := 0; i < len(r); i++ {
				if pred(r[i]) {
					n++
				}
			}
			return n
		}
		isD := func(c byte) bool { return c >= '0' && c <= '9' }
		isU := func(c byte) bool { return c >= 'A' && c <= 'Z' }
		isL := func(c byte) bool { return c >= 'a' && c <= 'z' }
		isHex := func(c byte) bool { return isD(c) || strings.IndexByte("abcdefABCDEF", c) >= 0 }
		isSep := func(c byte) bool { return c == '+' || c == '-' || c == '_' }
		d, u, l := count(isD), count(isU), count(isL)
		if count(isHex) >= 32 && count(func(c byte) bool { return !isHex(c) && !isSep(c) }) == 0 {
			return Redacted
		}
		if len(r) >= 21 && d >= 2 && u >= 2 && l >= 2 {
			return Redacted
		}
		if u == 0 && l == 0 && d >= 13 && d <= 19 {
			var digits []int
			for i := 0; i < len(r); i++ {
				if isD(r[i]) {
					digits = append(digits, int(r[i]-'0'))
				}
			}
			sum := 0
			for k := range digits {
				v := digits[len(digits)-1-k]
				if k%2 == 1 {
					v = v*2%10 + v*2/10
				}
				sum += v
			}
			if sum%10 == 0 {
				return Redacted
			}
		}
		return r
	})
}

func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"", "https://domain/path?a=1&b=2", "https://h/0123456789abcdef0123456789abcdef/x",
		"https://h/01234567890123456azAZ/x", "https://h/p?n=4111-1111-1111-1111", "REDACTED",
		"4222222222222", "\xff\x00+-_", "a_b-c+d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := URL(in)
		if again := URL(out); again != out {
			t.Fatalf("not idempotent: URL(%q) = %q, then %q", in, out, again)
		}
		if ref := refURL(in); out != ref {
			t.Fatalf("URL(%q) = %q; reference gives %q", in, out, ref)
		}
		// out differs from in only in whole runs replaced by REDACTED.
		i, o := 0, 0
		for i < len(in) {
			if idClass[in[i]] == 0 {
				if o >= len(out) || out[o] != in[i] {
					t.Fatalf("URL(%q) = %q: byte %d (%q) not copied through", in, out, i, in[i])
				}
				i, o = i+1, o+1
				continue
			}
			j := i
			for j < len(in) && idClass[in[j]] != 0 {
				j++
			}
			switch {
			case strings.HasPrefix(out[o:], in[i:j]) && (o+j-i == len(out) || idClass[out[o+j-i]] == 0):
				o += j - i
			case strings.HasPrefix(out[o:], Redacted) && (o+len(Redacted) == len(out) || idClass[out[o+len(Redacted)]] == 0):
				o += len(Redacted)
			default:
				t.Fatalf("URL(%q) = %q: run %q neither kept nor REDACTED", in, out, in[i:j])
			}
			i = j
		}
		if o != len(out) {
			t.Fatalf("URL(%q) = %q: trailing output", in, out)
		}
	})
}

// The fixtures were redacted by the runtime; redacting again changes nothing.
func TestFixturesAlreadyRedacted(t *testing.T) {
	items := fixtureItems(t)
	urls, headers := 0, 0
	p, err := New(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Event == nil || it.Event.Request == nil {
			continue
		}
		r := it.Event.Request
		urls++
		if got := URL(r.URL); got != r.URL {
			t.Errorf("URL(%q) = %q; the runtime already redacted it", r.URL, got)
		}
		for _, h := range r.Headers {
			headers++
			if got := HeaderValue(h.Name, h.Value); got != h.Value {
				t.Errorf("HeaderValue(%q, %q) = %q; the runtime already redacted it", h.Name, h.Value, got)
			}
		}
		before, _ := schemas.Marshal(nil, &it)
		p.Item(&it)
		after, _ := schemas.Marshal(nil, &it)
		if string(before) != string(after) {
			t.Errorf("Item changed an already redacted item:\n%s\n%s", before, after)
		}
	}
	if urls < 5 || headers < 10 {
		t.Fatalf("only %d URLs and %d headers in the fixtures", urls, headers)
	}
}

// fixtureItems decodes every TraceItem in the runtime fixtures.
func fixtureItems(t testing.TB) []schemas.TraceItem {
	t.Helper()
	f, err := os.Open(filepath.Join(fixturesDir, "traceitems.jsonl"))
	if err != nil {
		t.Fatalf("the runtime fixtures are required: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	var all []schemas.TraceItem
	for sc.Scan() {
		var line struct{ Name, Raw string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		items, err := schemas.DecodeAll([]byte(line.Raw))
		if err != nil {
			t.Fatalf("fixture %s: %v", line.Name, err)
		}
		all = append(all, items...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(all) < 10 {
		t.Fatalf("only %d fixture items", len(all))
	}
	return all
}
