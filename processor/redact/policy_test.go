package redact

import (
	"encoding/json"
	"flag"
	"strings"
	"testing"

	"github.com/taillight/taillight/schemas"
)

func allRules() Rules {
	r := Rules{QueryParams: []string{"token", "api_key"}}
	r.AllText()
	return r
}

func mustNew(t testing.TB, r Rules) *Policy {
	t.Helper()
	p, err := New(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyURL(t *testing.T) {
	p := mustNew(t, allRules())
	f := func(in, want string) {
		t.Helper()
		if got := p.URL(in); got != want {
			t.Fatalf("URL(%q) = %q; want %q", in, got, want)
		}
		if again := p.URL(want); again != want {
			t.Fatalf("URL(%q) not idempotent: %q", want, again)
		}
	}
	f("https://a.dev/x?token=s3cr3t", "https://a.dev/x?token=REDACTED")
	f("https://a.dev/x?TOKEN=s3cr3t&a=1", "https://a.dev/x?TOKEN=REDACTED&a=1")
	f("https://a.dev/x?a=1&api_key=k&b=2#token=frag", "https://a.dev/x?a=1&api_key=REDACTED&b=2#token=frag")
	f("https://a.dev/x?token=&token&xtoken=1&token_x=2", "https://a.dev/x?token=&token&xtoken=1&token_x=2")
	f("https://a.dev/token=1?x=1", "https://a.dev/token=1?x=1") // path, not query
	f("https://a.dev/x?token=a=b&token=c", "https://a.dev/x?token=REDACTED&token=REDACTED")
	f("https://a.dev/x?token=0123456789abcdef0123456789abcdef", "https://a.dev/x?token=REDACTED")
	f("https://a.dev/x", "https://a.dev/x")
	f("", "")
}

func TestRulesValidate(t *testing.T) {
	for _, bad := range [][]string{{""}, {"a&b"}, {"a=b"}, {"a#"}, {"?a"}} {
		if _, err := New(Rules{QueryParams: bad}); err == nil {
			t.Errorf("New(QueryParams: %q) = nil error", bad)
		}
	}
	if _, err := New(Rules{QueryParams: []string{"token", "x-y"}}); err != nil {
		t.Fatal(err)
	}
}

func TestRulesRegisterFlags(t *testing.T) {
	var r Rules
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	r.RegisterFlags(fs, "rules.")
	if err := fs.Parse([]string{"-rules.query-params", "a, b,,c", "-rules.emails", "-rules.jwts"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.QueryParams, "|") != "a|b|c" || !r.Emails || !r.JWTs || r.IPs || r.BearerTokens || r.CardNumbers {
		t.Fatalf("parsed %+v", r)
	}
}

func TestText(t *testing.T) {
	p := mustNew(t, allRules())
	f := func(in, want string) {
		t.Helper()
		if got := p.Text(in); got != want {
			t.Fatalf("Text(%q) = %q; want %q", in, got, want)
		}
		if again := p.Text(want); again != want {
			t.Fatalf("Text(%q) not idempotent: %q", want, again)
		}
	}
	f("", "")
	f("nothing to see here", "nothing to see here")
	// emails
	f("mail jane.doe+x@example.co.uk now", "mail REDACTED now")
	f("<a@b.io>, c@d.org.", "<REDACTED>, REDACTED.")
	f("a@b@c.com", "REDACTED")
	f("x@y.com@z.com", "REDACTED")
	f("user@localhost @handle a@b.c a@1.23", "user@localhost @handle a@b.c a@1.23")
	// IPv4
	f("from 192.168.1.10:8080 and 10.0.0.1.", "from REDACTED:8080 and REDACTED.")
	f("v1.2.3.4 1.2.3 1.2.3.4.5 256.1.1.1 1.2.3.4a", "v1.2.3.4 1.2.3 1.2.3.4.5 256.1.1.1 1.2.3.4a")
	// IPv6
	f("peer 2001:db8::1 up", "peer REDACTED up")
	f("[fe80::1ff:fe23:4567:890a]:443", "[REDACTED]:443")
	f("ip:2001:db8:0:0:0:0:2:1, ::1", "ip:REDACTED, REDACTED")
	f("::ffff:192.0.2.128", "REDACTED")
	f("fe80::1: timeout", "REDACTED: timeout")
	f("std::vector a::b:: 12:30:45 00:1a:2b:3c:4d:5e ::", "std::vector a::b:: 12:30:45 00:1a:2b:3c:4d:5e ::")
	f("at producer.js:60:36", "at producer.js:60:36")
	// bearer tokens
	f("Authorization: Bearer abc.DEF-123_xyz~+/=", "Authorization: Bearer REDACTED")
	f("authorization: bearer   abcdefgh1", "authorization: bearer   REDACTED")
	f("use a Bearer token, or Bearer REDACTED", "use a Bearer token, or Bearer REDACTED")
	f("unbearer abcdefghijkl", "unbearer abcdefghijkl")
	f("BeArEr abcdefghijkl", "BeArEr REDACTED")
	// JWTs
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	f("token="+jwt+"; next", "token=REDACTED; next")
	f("got "+jwt+".", "got REDACTED.")
	f("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "REDACTED")
	f("eyJ.eyJ.x eyJabc.notjson.sig", "eyJ.eyJ.x eyJabc.notjson.sig")
	// card numbers
	f("card 4111 1111 1111 1111 ok", "card REDACTED ok")
	f("card 4111-1111-1111-1111, order 12 4222222222222 5", "card REDACTED, order 12 REDACTED 5")
	f("4111111111111112 1700000000000000 4111  1111 1111 1111", "4111111111111112 1700000000000000 4111  1111 1111 1111")
	f("t=1700000000005", "t=1700000000005") // Luhn-valid epoch ms: issuer digit 1 is no card
	f("40000000000000000002 411111111117", "40000000000000000002 411111111117")
	f("x4222222222222y", "xREDACTEDy")
}

func TestTextRulesSeparately(t *testing.T) {
	in := "a@b.io 10.0.0.1 ::1 Bearer abcdefghij 4222222222222 eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln"
	f := func(r Rules, want string) {
		t.Helper()
		if got := mustNew(t, r).Text(in); got != want {
			t.Fatalf("Text with %+v = %q; want %q", r, got, want)
		}
	}
	f(Rules{}, in)
	f(Rules{Emails: true}, "REDACTED 10.0.0.1 ::1 Bearer abcdefghij 4222222222222 eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
	f(Rules{IPs: true}, "a@b.io REDACTED REDACTED Bearer abcdefghij 4222222222222 eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
	f(Rules{BearerTokens: true}, "a@b.io 10.0.0.1 ::1 Bearer REDACTED 4222222222222 eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
	f(Rules{CardNumbers: true}, "a@b.io 10.0.0.1 ::1 Bearer abcdefghij REDACTED eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln")
	f(Rules{JWTs: true}, "a@b.io 10.0.0.1 ::1 Bearer abcdefghij 4222222222222 REDACTED")
}

func TestJSON(t *testing.T) {
	p := mustNew(t, allRules())
	f := func(in, want string) {
		t.Helper()
		got, changed := p.json([]byte(in))
		if string(got) != want {
			t.Fatalf("json(%s) = %s; want %s", in, got, want)
		}
		if changed != (in != want) {
			t.Fatalf("json(%s): changed = %v", in, changed)
		}
		if json.Valid([]byte(in)) && !json.Valid(got) {
			t.Fatalf("json(%s) = %s: invalid JSON", in, got)
		}
		if again, _ := p.json(got); string(again) != string(got) {
			t.Fatalf("json(%s) not idempotent: %s", got, again)
		}
	}
	f(`["dbg",1]`, `["dbg",1]`)
	f(`["login a@b.io from 10.0.0.1"]`, `["login REDACTED from REDACTED"]`)
	// Keys are kept, values redacted at any depth.
	f(`[{"a@b.io": "a@b.io", "n": {"ip" : ["::1", 2]}}]`, `[{"a@b.io": "REDACTED", "n": {"ip" : ["REDACTED", 2]}}]`)
	// Escapes split strings: a replacement never eats into one.
	f(`["x\"a@b.io\"\n10.0.0.1\u00404222222222222"]`, `["x\"REDACTED\"\nREDACTED\u0040REDACTED"]`)
	f(`["\\", "\u12344222222222222"]`, `["\\", "\u1234REDACTED"]`)
	// A bare integer card number becomes a string; other numbers stay.
	f(`[4222222222222, -4222222222222, 4222222222222.5, 1700000000000, 1e20]`, `["REDACTED", "REDACTED", 4222222222222.5, 1700000000000, 1e20]`)
	f(`"truncated: a@b.io"`, `"truncated: REDACTED"`)
	f(`null`, `null`)
	f(``, ``)
	f(`["unterminated a@b.io`, `["unterminated a@b.io`)
}

func TestItem(t *testing.T) {
	raw := `{"event":{"request":{"url":"https://h/u/0123456789abcdef0123456789abcdef?token=t0p&q=1","method":"GET",
	"headers":{"authorization":"Bearer abcdefghijk","cookie":"a=b","x-case-id":"0123456789abcdef0123456789abcdef","x-password":"hunter2"}}},
	"eventTimestamp":1,"logs":[{"message":["mail a@b.io"],"level":"log","timestamp":1,"errorInfo":[{"name":"Error","message":"from 10.0.0.1","stack":"at x"}]}],
	"exceptions":[{"name":"Error","message":"card 4111111111111111","stack":"at 2001:db8::1"}],
	"diagnosticsChannelEvents":[{"channel":"c","message":{"who":"a@b.io"},"timestamp":1}],
	"scriptName":"s","outcome":"ok","executionModel":"stateless","truncated":false,"cpuTime":0,"wallTime":0}`
	decode := func() schemas.TraceItem {
		var it schemas.TraceItem
		if err := schemas.Unmarshal([]byte(raw), &it); err != nil {
			t.Fatal(err)
		}
		return it
	}

	it := decode()
	mustNew(t, Rules{}).Item(&it)
	r := it.Event.Request
	if r.URL != "https://h/u/REDACTED?token=t0p&q=1" {
		t.Errorf("default URL = %q", r.URL)
	}
	want := map[string]string{"authorization": Redacted, "cookie": Redacted, "x-case-id": "0123456789abcdef0123456789abcdef", "x-password": "hunter2"}
	for _, h := range r.Headers {
		if want[h.Name] != h.Value {
			t.Errorf("default header %s = %q; want %q", h.Name, h.Value, want[h.Name])
		}
	}
	if string(it.Logs[0].Message) != `["mail a@b.io"]` || it.Exceptions[0].Message != "card 4111111111111111" {
		t.Errorf("default policy touched logs or exceptions: %s %q", it.Logs[0].Message, it.Exceptions[0].Message)
	}

	it = decode()
	p := mustNew(t, allRules())
	p.Item(&it)
	if it.Event.Request.URL != "https://h/u/REDACTED?token=REDACTED&q=1" {
		t.Errorf("URL = %q", it.Event.Request.URL)
	}
	checks := []struct{ got, want string }{
		{string(it.Logs[0].Message), `["mail REDACTED"]`},
		{string(it.Logs[0].ErrorInfo), `[{"name":"Error","message":"from REDACTED","stack":"at x"}]`},
		{it.Exceptions[0].Message, "card REDACTED"},
		{it.Exceptions[0].Stack, "at REDACTED"},
		{string(it.DiagnosticsChannelEvents[0].Message), `{"who":"REDACTED"}`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %s; want %s", c.got, c.want)
		}
	}
	first, err := schemas.Marshal(nil, &it)
	if err != nil {
		t.Fatal(err)
	}
	p.Item(&it)
	second, _ := schemas.Marshal(nil, &it)
	if string(first) != string(second) {
		t.Errorf("Item not idempotent:\n%s\n%s", first, second)
	}
}

// Item must not write through the bytes a zero-copy decode aliases.
func TestItemZeroCopyInputIntact(t *testing.T) {
	raw := []byte(`{"event":{"request":{"url":"https://h/0123456789abcdef0123456789abcdef","method":"GET","headers":{"cookie":"abc"}}},"logs":[{"message":["a@b.io"],"level":"log","timestamp":1}],"exceptions":[{"name":"E","message":"a@b.io","timestamp":1}],"outcome":"ok"}`)
	orig := string(raw)
	var it schemas.TraceItem
	if err := new(schemas.Decoder).DecodeZeroCopy(raw, &it); err != nil {
		t.Fatal(err)
	}
	mustNew(t, allRules()).Item(&it)
	if string(raw) != orig {
		t.Fatalf("input bytes changed:\n%s\n%s", orig, raw)
	}
	if it.Event.Request.URL != "https://h/REDACTED" || it.Event.Request.Headers[0].Value != Redacted || string(it.Logs[0].Message) != `["REDACTED"]` {
		t.Fatalf("not redacted: %+v", it)
	}
}

// The runtime fixtures hold nothing the text rules should find but the
// thrown errors and logs; redacting them twice gives the same item.
func TestItemFixturesIdempotent(t *testing.T) {
	p := mustNew(t, allRules())
	for _, it := range fixtureItems(t) {
		p.Item(&it)
		once, _ := schemas.Marshal(nil, &it)
		p.Item(&it)
		twice, _ := schemas.Marshal(nil, &it)
		if string(once) != string(twice) {
			t.Errorf("not idempotent:\n%s\n%s", once, twice)
		}
		for _, l := range it.Logs {
			if !json.Valid(l.Message) {
				t.Errorf("invalid log message after redaction: %s", l.Message)
			}
		}
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{
		"a@b.io", "10.0.0.1", "2001:db8::1", "Bearer abcdefghij", "4111 1111 1111 1111",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "x@y.com@z.com", "::ffff:1.2.3.4", "REDACTED@a.io",
	} {
		f.Add(s)
	}
	p := mustNew(f, allRules())
	f.Fuzz(func(t *testing.T, in string) {
		out := p.Text(in)
		if again := p.Text(out); again != out {
			t.Fatalf("not idempotent: Text(%q) = %q, then %q", in, out, again)
		}
		js, _ := json.Marshal([]string{in})
		got, _ := p.json(js)
		if !json.Valid(got) {
			t.Fatalf("json(%s) = %s: invalid", js, got)
		}
		if again, _ := p.json(got); string(again) != string(got) {
			t.Fatalf("json not idempotent: %s then %s", got, again)
		}
	})
}
