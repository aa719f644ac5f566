package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

// runRedactCmd runs `taillight redact args...` on input.
func runRedactCmd(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), append([]string{"redact"}, args...), stdio{strings.NewReader(input), &out, &errb})
	return code, out.String(), errb.String()
}

// fixtureArrays returns each capture in the runtime fixtures: the exact JSON
// array a Tail Worker sent.
func fixtureArrays(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../../../shared/fixtures/traceitems.jsonl")
	if err != nil {
		t.Fatalf("the runtime fixtures are required: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	out := map[string]string{}
	for sc.Scan() {
		var line struct{ Name, Raw string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		out[line.Name] = line.Raw
	}
	if len(out) < 10 {
		t.Fatalf("only %d fixtures", len(out))
	}
	return out
}

// wantLines is what redact must print for input: each item decoded,
// redacted by p and encoded, one per line.
func wantLines(t *testing.T, input string, p *redact.Policy) string {
	t.Helper()
	items, err := schemas.DecodeAll([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := range items {
		p.Item(&items[i])
		if b, err = schemas.Marshal(b, &items[i]); err != nil {
			t.Fatal(err)
		}
		b = append(b, '\n')
	}
	return string(b)
}

func TestRedactFixtures(t *testing.T) {
	p, _ := redact.New(redact.Rules{})
	var ndjson strings.Builder
	total := 0
	for name, raw := range fixtureArrays(t) {
		code, out, errs := runRedactCmd(t, raw)
		if code != exitOK || errs != "" {
			t.Fatalf("%s: exit %d, stderr %q", name, code, errs)
		}
		if want := wantLines(t, raw, p); out != want {
			t.Errorf("%s: output\n%s\nwant\n%s", name, out, want)
		}
		// The runtime already redacted the fixtures: URL and headers come out as they went in.
		var in []map[string]any
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != len(in) {
			t.Fatalf("%s: %d lines for %d items", name, len(lines), len(in))
		}
		for i, l := range lines {
			var got map[string]any
			if err := json.Unmarshal([]byte(l), &got); err != nil {
				t.Fatalf("%s line %d: %v", name, i+1, err)
			}
			if ev, ok := in[i]["event"].(map[string]any); ok && ev["request"] != nil {
				gotReq := got["event"].(map[string]any)["request"].(map[string]any)
				wantReq := ev["request"].(map[string]any)
				if gotReq["url"] != wantReq["url"] || !jsonEqual(gotReq["headers"], wantReq["headers"]) {
					t.Errorf("%s item %d: request changed: %v -> %v", name, i, wantReq, gotReq)
				}
			}
			total++
			ndjson.WriteString(l)
			ndjson.WriteString("\n")
		}
	}
	// The NDJSON output is valid input, and redacting it again changes nothing.
	code, out, errs := runRedactCmd(t, ndjson.String())
	if code != exitOK || out != ndjson.String() {
		t.Fatalf("NDJSON round: exit %d, stderr %q, same output %v", code, errs, out == ndjson.String())
	}
	if total < 15 {
		t.Fatalf("only %d items", total)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

const (
	secretItem = `{"event":{"request":{"url":"https://h/u/0123456789abcdef0123456789abcdef?token=abc&q=1","method":"GET","headers":{"authorization":"Bearer xyz","x-password":"p"}}},"eventTimestamp":1,"logs":[{"message":["login jane@example.com from 203.0.113.7"],"level":"log","timestamp":1}],"exceptions":[{"name":"Error","message":"card 4111 1111 1111 1111 declined","stack":"at x","timestamp":1}],"scriptName":"s","outcome":"ok"}`
	plainItem  = `{"event":null,"eventTimestamp":2,"logs":[],"exceptions":[],"scriptName":null,"outcome":"canceled"}`
)

func TestRedactRules(t *testing.T) {
	f := func(args []string, want ...string) {
		t.Helper()
		code, out, errs := runRedactCmd(t, secretItem, args...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %s:\n%s", args, w, out)
			}
		}
	}
	f(nil,
		`"url":"https://h/u/REDACTED?token=abc&q=1"`, `"authorization":"REDACTED"`, `"x-password":"p"`,
		`"message":["login jane@example.com from 203.0.113.7"]`, `"message":"card 4111 1111 1111 1111 declined"`)
	f([]string{"-rules"},
		`"url":"https://h/u/REDACTED?token=REDACTED&q=1"`,
		`"message":["login REDACTED from REDACTED"]`, `"message":"card REDACTED declined"`)
	f([]string{"-rules", "-rules.query-params", "q"}, `"url":"https://h/u/REDACTED?token=abc&q=REDACTED"`, `"message":["login REDACTED from REDACTED"]`)
	f([]string{"-rules.emails"}, `"url":"https://h/u/REDACTED?token=abc&q=1"`, `"message":["login REDACTED from 203.0.113.7"]`, `"message":"card 4111 1111 1111 1111 declined"`)
	f([]string{"-rules.query-params=token,q"}, `"url":"https://h/u/REDACTED?token=REDACTED&q=REDACTED"`, `jane@example.com`)
}

func TestRedactFormats(t *testing.T) {
	p, _ := redact.New(redact.Rules{})
	for name, in := range map[string]string{
		"array":         "[" + secretItem + ",\n " + plainItem + "]",
		"array-spaced":  " \n[ " + secretItem + " , " + plainItem + " ]\n",
		"ndjson":        secretItem + "\n" + plainItem + "\n",
		"ndjson-no-eol": secretItem + "\n\n" + plainItem,
		"single-object": secretItem,
		"empty":         "",
		"empty-array":   "[]",
		"whitespace":    " \n\t\n",
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := runRedactCmd(t, in)
			if code != exitOK || errs != "" {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			want := ""
			if strings.TrimSpace(in) != "" && strings.TrimSpace(in) != "[]" {
				want = wantLines(t, in, p)
			}
			if out != want {
				t.Fatalf("output\n%s\nwant\n%s", out, want)
			}
		})
	}
}

func TestRedactMalformed(t *testing.T) {
	p, _ := redact.New(redact.Rules{})
	first := wantLines(t, secretItem, p)
	f := func(name, in string, wantOut string, wantErr ...string) {
		t.Helper()
		code, out, errs := runRedactCmd(t, in)
		if code != exitUsage {
			t.Fatalf("%s: exit %d; want %d (stderr %q)", name, code, exitUsage, errs)
		}
		if out != wantOut {
			t.Fatalf("%s: stdout\n%q\nwant\n%q", name, out, wantOut)
		}
		if !strings.HasSuffix(out, "\n") && out != "" {
			t.Fatalf("%s: a partial line was written: %q", name, out)
		}
		for _, w := range wantErr {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q lacks %q", name, errs, w)
			}
		}
	}
	f("truncated array", "["+secretItem+", {\"outcome\":", first, "item 1", "byte offset", "unexpected end of input")
	f("unclosed array", "["+secretItem, first, "item 1", "not closed")
	f("missing comma", "["+secretItem+" "+plainItem+"]", first, "item 1", "expected ',' or ']'")
	f("trailing data", "["+secretItem+"] x", first, "after the JSON array")
	f("ndjson bad line 3", secretItem+"\n"+secretItem+"\n{\"outcome\": tru}\n"+plainItem+"\n", first+first, "item 2", "line 3")
	f("ndjson missing outcome", secretItem+"\n{\"event\":null}\n", first, "item 1", "line 2", "outcome is missing")
	f("ndjson not an object", secretItem+"\n42\n", first, "item 1", "line 2")
	f("wrong field type", `{"outcome":"ok","cpuTime":"fast"}`, "", "item 0", "line 1")
	f("empty url", `{"outcome":"ok","event":{"request":{"url":"","method":"GET","headers":{}}}}`, "", "item 0", "url is empty")
	f("not json", "hello", "", "item 0", "expected a JSON array or object")
}

func TestRedactFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nope"},
		{"extra-arg"},
		{"-rules.query-params", "a=b"},
		{"-rules=maybe"},
	} {
		code, out, errs := runRedactCmd(t, secretItem, args...)
		if code != exitUsage || out != "" || errs == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d with a message", args, code, out, errs, exitUsage)
		}
	}
	code, out, errs := runRedactCmd(t, "", "-h") // asked-for help: stdout
	if code != exitOK || !strings.Contains(out, "-rules.query-params") || errs != "" {
		t.Fatalf("-h: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	var help bytes.Buffer
	if code := runMain(context.Background(), []string{"help"}, stdio{strings.NewReader(""), &help, &help}); code != exitOK || !strings.Contains(help.String(), "redact") {
		t.Fatalf("help does not list redact: %q", help.String())
	}
}

func TestRedactEnv(t *testing.T) {
	t.Setenv("TAILLIGHT_RULES_QUERY_PARAMS", "q")
	code, out, errs := runRedactCmd(t, secretItem)
	if code != exitOK || !strings.Contains(out, "q=REDACTED") || strings.Contains(out, "token=REDACTED") {
		t.Fatalf("exit %d, stderr %q, out %s", code, errs, out)
	}
}

func TestRedactCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := runMain(ctx, []string{"redact"}, stdio{strings.NewReader(secretItem), &out, &errb})
	if code != exitError || out.Len() != 0 || !strings.Contains(errb.String(), "stopped after 0 items") {
		t.Fatalf("exit %d, out %q, err %q", code, out.String(), errb.String())
	}
}

// A write error on stdout is a runtime failure, not bad input.
func TestRedactWriteError(t *testing.T) {
	var errb bytes.Buffer
	code := runMain(context.Background(), []string{"redact"}, stdio{strings.NewReader(secretItem), failWriter{}, &errb})
	if code != exitError || !strings.Contains(errb.String(), "write stdout") {
		t.Fatalf("exit %d, err %q", code, errb.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }
