package storage

import (
	"io/fs"
	"math"
	"path"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestQueries(t *testing.T) {
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"errors_per_endpoint", "invocation", "invocations", "log_search", "outcomes_per_script", "overview",
		"recent_exceptions", "requests_per_colo", "script_time", "top_failing_routes"}
	var got []string
	for _, q := range qs {
		got = append(got, q.Name)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("saved queries = %v; want %v", got, want)
	}
	args := QueryArgs{
		"from": time.Unix(1767225600, 0), "to": time.Unix(1767229200, 0), "step": 60,
		"script": "api", "namespace": "customers", "worker_id": "app-1", "colo": "SJC", "outcome": "ok", "search": "x", "limit": 10,
		"status_class": "5xx", "route": "/r", "skip": 0, "topic": "t", "partition": 1, "offset": uint64(math.MaxUint64),
	}
	for _, q := range qs {
		if !q.HasParam("from") || !q.HasParam("to") {
			t.Errorf("%s: every saved query takes the time range (from, to)", q.Name)
		}
		sql, err := RenderQuery(&q, "tl", args)
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		if strings.ContainsAny(sql, "{}") || !strings.Contains(sql, "tl.") {
			t.Errorf("%s: rendered SQL still has a placeholder or lacks the database:\n%s", q.Name, sql)
		}
	}
}

func TestParseQuery(t *testing.T) {
	const head = "-- title: T\n-- description: D\n"
	f := func(text, wantErr string) {
		t.Helper()
		_, err := ParseQuery("q.sql", text)
		if wantErr == "" {
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", text, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("ParseQuery(%q) error = %v; want %q", text, err, wantErr)
		}
	}
	f(head+"-- chart: table\n-- params: from DateTime\nSELECT 1 FROM {{database}}.t WHERE x > {from:DateTime}", "")
	f(head+"-- chart: stat\n-- params:\nSELECT 1 FROM {{database}}.t", "")
	f(head+"-- chart: line\n-- x: t\n-- y: v\n-- series: s\n-- params:\nSELECT 1 FROM {{database}}.t", "")
	f("-- description: D\n-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t", "title and description")
	f(head+"-- chart: pie\n-- params:\nSELECT 1 FROM {{database}}.t", "want line, bar")
	f(head+"-- chart: line\n-- params:\nSELECT 1 FROM {{database}}.t", "needs x and y")
	f(head+"-- chart: table\n-- x: a\n-- params:\nSELECT 1 FROM {{database}}.t", "takes no x")
	f(head+"-- chart: bar\n-- x: a\n-- y: b\n-- series: c\n-- params:\nSELECT 1 FROM {{database}}.t", "")
	f(head+"-- chart: table\n-- series: c\n-- params:\nSELECT 1 FROM {{database}}.t", "takes no x")
	f(head+"-- chart: table\n-- panel: no\n-- params:\nSELECT 1 FROM {{database}}.t", "")
	f(head+"-- chart: table\n-- panel: maybe\n-- params:\nSELECT 1 FROM {{database}}.t", "want yes or no")
	f(head+"-- chart: table\n-- params: o UInt64\nSELECT {o:UInt64} FROM {{database}}.t", "")
	f(head+"-- chart: table\nSELECT 1 FROM {{database}}.t", "params header is required")
	f(head+"-- chart: table\n-- params:\n", "no statement")
	f(head+"-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t;", "without ';'")
	f(head+"-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t -- hi", "comments belong")
	f(head+"-- chart: table\n-- params:\nSELECT 1 FROM taillight.t", "{{database}}.table")
	f(head+"-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t, {{db}}.u", "unknown placeholder")
	f(head+"-- chart: table\n-- params: from Date\nSELECT {from:Date} FROM {{database}}.t", "want DateTime")
	f(head+"-- chart: table\n-- params: a String, a String\nSELECT {a:String} FROM {{database}}.t", "declared twice")
	f(head+"-- chart: table\n-- params:\nSELECT {a:String} FROM {{database}}.t", "not in the params header")
	f(head+"-- chart: table\n-- params: a UInt32\nSELECT {a:String} FROM {{database}}.t", "declared as UInt32")
	f(head+"-- chart: table\n-- params: a String\nSELECT 1 FROM {{database}}.t", "declared but not used")
	f(head+"-- chart: table\n-- params: a String\nSELECT {a:String}, {A:String} FROM {{database}}.t", "malformed placeholder")
	f(head+"-- chart: table\n-- params: from-x DateTime\nSELECT 1 FROM {{database}}.t", "not 'name Type'")
	f(head+"-- colour: red\n-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t", "unknown header key")
	if _, err := ParseQuery("Bad-Name.sql", head); err == nil {
		t.Fatal("ParseQuery accepted a file name with capitals and a dash")
	}
}

func TestExpandFragments(t *testing.T) {
	fsys := fstest.MapFS{
		"queries/fragments/a.sql":     {Data: []byte("-- a comment\nx = 1\n    AND {{fragment:b}}\n")},
		"queries/fragments/b.sql":     {Data: []byte("y = 2\n    AND z = 3\n")},
		"queries/fragments/loop.sql":  {Data: []byte("{{fragment:loop2}}")},
		"queries/fragments/loop2.sql": {Data: []byte("{{fragment:loop}}")},
	}
	f := func(sql, want, wantErr string) {
		t.Helper()
		got, err := expandFragments(fsys, "queries/fragments", sql)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("expandFragments(%q) error = %v; want %q", sql, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("expandFragments(%q): %v", sql, err)
		}
		if got != want {
			t.Fatalf("expandFragments(%q) =\n%s\nwant\n%s", sql, got, want)
		}
	}
	f("SELECT 1", "SELECT 1", "")
	f("SELECT 1\n  WHERE {{fragment:a}}\n  LIMIT 1", "SELECT 1\n  WHERE x = 1\n      AND y = 2\n          AND z = 3\n  LIMIT 1", "")
	f("{{fragment:b}} OR {{fragment:b}}", "y = 2\n    AND z = 3 OR y = 2\n    AND z = 3", "")
	f("WHERE {{fragment:nosuch}}", "", `unknown fragment "nosuch"`)
	f("WHERE {{fragment:loop}}", "", `fragment "loop" uses itself`)
	// Through ParseQuery, an unknown fragment fails the load.
	_, err := ParseQuery("q.sql", "-- title: T\n-- description: D\n-- chart: table\n-- params:\nSELECT 1 FROM {{database}}.t WHERE {{fragment:nosuch}}")
	if err == nil || !strings.Contains(err.Error(), `query file q.sql: unknown fragment "nosuch"`) {
		t.Fatalf("ParseQuery with an unknown fragment: err = %v", err)
	}
}

// Every fragment is used: an unused one would go unchecked by the tests
// and by sqlcheck.py, which run only the saved queries.
func TestFragmentsUsed(t *testing.T) {
	queries, err := fs.Glob(queryFiles, "queries/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	fragments, err := fs.Glob(fragmentFiles, "queries/fragments/*.sql")
	if err != nil || len(fragments) == 0 {
		t.Fatalf("fragments: %v, %v", fragments, err)
	}
	var all strings.Builder
	for _, p := range queries {
		b, _ := fs.ReadFile(queryFiles, p)
		all.Write(b)
	}
	for _, p := range fragments {
		b, _ := fs.ReadFile(fragmentFiles, p)
		all.Write(b)
	}
	for _, p := range fragments {
		name := strings.TrimSuffix(path.Base(p), ".sql")
		if !strings.Contains(all.String(), "{{fragment:"+name+"}}") {
			t.Errorf("fragment %s is used by no saved query or fragment", name)
		}
	}
}

func TestRenderQuery(t *testing.T) {
	q, err := ParseQuery("q.sql", "-- title: T\n-- description: D\n-- chart: table\n"+
		"-- params: from DateTime, n UInt32, s String\n"+
		"SELECT {s:String} FROM {{database}}.t WHERE ts >= {from:DateTime} AND s = {s:String} LIMIT {n:UInt32}")
	if err != nil {
		t.Fatal(err)
	}
	f := func(db string, args QueryArgs, want, wantErr string) {
		t.Helper()
		got, err := RenderQuery(&q, db, args)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("RenderQuery(%v) error = %v; want %q", args, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("RenderQuery(%v): %v", args, err)
		}
		if got != want {
			t.Fatalf("RenderQuery(%v) =\n%s\nwant\n%s", args, got, want)
		}
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600))
	f("tl", QueryArgs{"from": ts, "n": 5, "s": "a'b", "extra": "ignored"},
		`SELECT 'a\'b' FROM tl.t WHERE ts >= toDateTime(1767222000) AND s = 'a\'b' LIMIT 5`, "")
	f("tl", QueryArgs{"from": ts, "n": uint32(7), "s": `') OR 1=1 --`},
		`SELECT '\') OR 1=1 --' FROM tl.t WHERE ts >= toDateTime(1767222000) AND s = '\') OR 1=1 --' LIMIT 7`, "")
	f("tl", QueryArgs{"from": ts, "n": 5}, "", "no value for parameter s")
	f("tl", QueryArgs{"from": "2026-01-01", "n": 5, "s": ""}, "", "want time.Time")
	f("tl", QueryArgs{"from": ts, "n": -1, "s": ""}, "", "negative")
	f("tl", QueryArgs{"from": ts, "n": int64(math.MaxUint32 + 1), "s": ""}, "", "does not fit UInt32")
	f("tl", QueryArgs{"from": ts, "n": "5", "s": ""}, "", "want an integer")
	f("tl", QueryArgs{"from": ts, "n": 5, "s": 5}, "", "want string")
	f("tl", QueryArgs{"from": time.Unix(-1, 0), "n": 5, "s": ""}, "", "outside ClickHouse's DateTime range")
	f("tl; DROP", QueryArgs{"from": ts, "n": 5, "s": ""}, "", "not a plain identifier")
	f("`tl`", QueryArgs{"from": ts, "n": 5, "s": ""}, "", "not a plain identifier")
}

func TestLiteralUInt64(t *testing.T) {
	f := func(v any, want, wantErr string) {
		t.Helper()
		got, err := Literal(ParamUInt64, v)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("Literal(UInt64, %v) error = %v; want %q", v, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("Literal(UInt64, %v) = %q, %v; want %q", v, got, err, want)
		}
	}
	f(uint64(math.MaxUint64), "18446744073709551615", "")
	f(int64(math.MaxUint32+1), "4294967296", "")
	f(0, "0", "")
	f(-1, "", "negative")
	f("1", "", "want an integer for UInt64")
}

// unquoteCH decodes a ClickHouse single-quoted string literal the way the
// server's parser does (readQuotedString: backslash escapes and doubled
// quotes), failing on anything the server would reject or read differently.
func unquoteCH(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", false
	}
	in := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch c {
		case '\'':
			// An unescaped quote inside would end the literal early.
			return "", false
		case '\\':
			i++
			if i >= len(in) {
				return "", false
			}
			switch in[i] {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'':
				b.WriteByte(in[i])
			default:
				// \x, \a, \v and others have special meanings; QuoteString
				// must never produce them.
				return "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func TestQuoteString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := QuoteString(in)
		if got != want {
			t.Fatalf("QuoteString(%q) = %s; want %s", in, got, want)
		}
		back, ok := unquoteCH(got)
		if !ok || back != in {
			t.Fatalf("QuoteString(%q) = %s does not read back (%q, %v)", in, got, back, ok)
		}
	}
	f("", `''`)
	f("abc", `'abc'`)
	f("it's", `'it\'s'`)
	f(`a\b`, `'a\\b'`)
	f(`\'`, `'\\\''`)
	f(`') OR 1=1 --`, `'\') OR 1=1 --'`)
	f("a\x00b\nc\rd\te\bf\fg", `'a\0b\nc\rd\te\bf\fg'`)
	f("/* */ ; -- \"x\" `y`", "'/* */ ; -- \"x\" `y`'")
	f("ü\xff\xfe", "'ü\xff\xfe'")
	f(`\x41`, `'\\x41'`)
}

func FuzzQuoteString(f *testing.F) {
	for _, s := range []string{"", "'", `\`, `\'`, "a\x00", "\xff", `') OR 1=1 --`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit := QuoteString(s)
		back, ok := unquoteCH(lit)
		if !ok || back != s {
			t.Fatalf("QuoteString(%q) = %s reads back as (%q, %v)", s, lit, back, ok)
		}
	})
}
