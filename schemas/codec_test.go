package schemas

import (
	"bufio"
	"bytes"
	stdjson "encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const fixturesDir = "../../shared/fixtures"

type fixture struct {
	Name string `json:"name"`
	Raw  string `json:"raw"`
}

// loadFixtures reads the runtime's captured TraceItems; a missing file fails
// the test, since the golden tests would otherwise prove nothing.
func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open(filepath.Join(fixturesDir, "traceitems.jsonl"))
	if err != nil {
		t.Fatalf("open fixtures: %v", err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var fx fixture
		if err := stdjson.Unmarshal(sc.Bytes(), &fx); err != nil {
			t.Fatalf("fixture line %d: %v", len(out)+1, err)
		}
		out = append(out, fx)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("only %d fixtures found", len(out))
	}
	return out
}

// semantic parses JSON with the standard library for a representation-neutral
// comparison.
func semantic(t testing.TB, b []byte) any {
	t.Helper()
	var v any
	d := stdjson.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return v
}

func TestFixturesRoundTrip(t *testing.T) {
	wantKind := map[string]Kind{
		"scheduled-via-service-binding":  KindScheduled,
		"queue-via-service-binding":      KindQueue,
		"jsrpc-WorkerEntrypoint":         KindRPC,
		"jsrpc-method-threw-still-ok":    KindRPC,
		"durable-object-alarm":           KindAlarm,
		"hibernatable-websocket-message": KindWebSocket,
		"hibernatable-websocket-close":   KindWebSocket,
		"tail-of-tail-consumedEvents":    KindTail,
	}
	for _, fx := range loadFixtures(t) {
		t.Run(fx.Name, func(t *testing.T) {
			items, err := DecodeAll([]byte(fx.Raw))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if len(items) != 1 {
				t.Fatalf("got %d items, want 1", len(items))
			}
			it := &items[0]
			want, ok := wantKind[fx.Name]
			if !ok {
				want = KindFetch
			}
			if got := it.Kind(); got != want {
				t.Errorf("Kind() = %q, want %q", got, want)
			}
			enc, err := Marshal(nil, it)
			if err != nil {
				t.Fatal(err)
			}
			orig := semantic(t, []byte(fx.Raw)).([]any)[0]
			if got := semantic(t, enc); !reflect.DeepEqual(got, orig) {
				t.Errorf("re-encoded item differs from the runtime's:\n got %s\nwant %s", enc, fx.Raw)
			}
			golden := filepath.Join("testdata", fx.Name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(enc, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			g, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(bytes.TrimSpace(g), enc) {
				t.Errorf("encoding changed:\n got %s\nwant %s", enc, g)
			}
		})
	}
}

func TestNullFields(t *testing.T) {
	var it TraceItem
	err := Unmarshal([]byte(`{"outcome":"canceled","scriptName":null,"eventTimestamp":null,"event":null,"logs":[],"exceptions":[],"future":{"x":1}}`), &it)
	if err != nil {
		t.Fatal(err)
	}
	if it.Kind() != KindNone || it.Script() != "" || it.EventTimestamp != nil || it.Status() != 0 || Key(&it) != nil {
		t.Fatalf("null fields not handled: %+v", it)
	}
	enc, _ := Marshal(nil, &it)
	for _, want := range []string{`"event":null`, `"scriptName":null`, `"eventTimestamp":null`} {
		if !strings.Contains(string(enc), want) {
			t.Errorf("%s missing from %s", want, enc)
		}
	}
}

func TestKindFromShape(t *testing.T) {
	f := func(event string, want Kind) {
		t.Helper()
		var it TraceItem
		if err := Unmarshal([]byte(`{"outcome":"ok","event":`+event+`}`), &it); err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		if got := it.Kind(); got != want {
			t.Fatalf("Kind(%s) = %q; want %q", event, got, want)
		}
	}
	f(`{"request":{"url":"https://a/","method":"GET","headers":{}}}`, KindFetch)
	f(`{"rpcMethod":"add"}`, KindRPC)
	f(`{"cron":"* * * * *","scheduledTime":1700000000000}`, KindScheduled)
	f(`{"scheduledTime":1700000000000}`, KindScheduled)
	f(`{"scheduledTime":"2026-11-22T01:53:30.309Z"}`, KindAlarm)
	f(`{"queue":"q","batchSize":3}`, KindQueue)
	f(`{"mailFrom":"a@b","rcptTo":"c@d","rawSize":10}`, KindEmail)
	f(`{"consumedEvents":[{"scriptName":null}]}`, KindTail)
	f(`{"consumedEvents":[]}`, KindCustom) // encodes as {}: must round-trip to the same kind
	f(`{"getWebSocketEvent":{"webSocketEventType":"error"}}`, KindWebSocket)
	f(`{}`, KindCustom)
	f(`null`, KindNone)
}

func TestReaderFormats(t *testing.T) {
	f := func(in string, want int) {
		t.Helper()
		items, err := DecodeAll([]byte(in))
		if err != nil {
			t.Fatalf("DecodeAll(%q): %v", in, err)
		}
		if len(items) != want {
			t.Fatalf("DecodeAll(%q) = %d items; want %d", in, len(items), want)
		}
	}
	ok := `{"outcome":"ok"}`
	f(``, 0)
	f(" \n", 0)
	f(`[]`, 0)
	f(` [ ] `, 0)
	f(ok, 1)
	f(`[`+ok+`]`, 1)
	f("[\n"+ok+",\n "+ok+"\n]\n", 2)
	f(ok+"\n"+ok+"\n", 2)
	f(ok+"\r\n\r\n"+ok, 2)
	f(ok+ok, 2)
	f(`{"outcome":"ok","x":"}{[\"]"}`, 1)
}

func TestReaderErrors(t *testing.T) {
	f := func(in string, index, line int, offset int64, reason string) {
		t.Helper()
		items, err := DecodeAll([]byte(in))
		var ie *ItemError
		if !errors.As(err, &ie) {
			t.Fatalf("DecodeAll(%q) error = %v; want *ItemError", in, err)
		}
		if ie.Index != index || ie.Line != line || ie.Offset != offset || !strings.Contains(ie.Error(), reason) {
			t.Fatalf("DecodeAll(%q) = %+v (%v); want index %d line %d offset %d reason %q", in, ie, ie, index, line, offset, reason)
		}
		if len(items) != index {
			t.Fatalf("DecodeAll(%q) returned %d good items before the error; want %d", in, len(items), index)
		}
	}
	ok := `{"outcome":"ok"}`
	f(`[`+ok+`,{"outcome":5}]`, 1, 0, 18, "outcome")
	f(ok+"\n"+`{"outcome":""}`, 1, 2, 17, "outcome is missing")
	f(ok+"\n\n"+`{"outcome":"ok"`, 1, 3, 18, "unexpected end")
	f(`[`+ok, 1, 0, 17, "not closed")
	f(`[`+ok+`]x`, 1, 0, 18, "after the JSON array")
	f(`[1]`, 0, 0, 1, "expected a JSON object")
	f(`"x"`, 0, 0, 0, "expected a JSON array or object")
	f(`[`+ok+` `+ok+`]`, 1, 0, 18, "expected ',' or ']'")
	f(ok+"\n"+`[`, 1, 2, 17, "expected a JSON object")
	f(`{"outcome":"ok","event":{"request":{"url":"","method":"GET","headers":{}}}}`, 0, 1, 0, "url is empty")
	f(`{"outcome":"ok","eventTimestamp":-1}`, 0, 1, 0, "negative")
	f(`{"outcome":"ok","logs":{}}`, 0, 1, 0, "logs")
	f("{\"outcome\":\"o\nk\"}", 0, 1, 0, "newline inside a JSON string")
	big := `{"outcome":"ok","x":"` + strings.Repeat("a", MaxItemBytes) + `"}`
	f(big, 0, 1, 0, "exceeds")
}

func TestReaderStopsAfterError(t *testing.T) {
	rd := NewReader(strings.NewReader(`{"outcome":1}` + "\n" + `{"outcome":"ok"}`))
	var it TraceItem
	if _, err := rd.Next(&it); err == nil {
		t.Fatal("want error")
	}
	if _, err := rd.Next(&it); err != io.EOF {
		t.Fatalf("after an error Next = %v; want io.EOF", err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add([]byte(fx.Raw))
	}
	f.Add([]byte(`{"outcome":"ok","event":{"scheduledTime":"x"}}`))
	f.Add([]byte(`[{"outcome":"0","event":{"consumedEvents":[]}}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		items, err := DecodeAll(in)
		if err != nil {
			return
		}
		for i := range items {
			a, err := Marshal(nil, &items[i])
			if err != nil {
				t.Fatalf("marshal a decoded item: %v", err)
			}
			var back TraceItem
			if err := Unmarshal(a, &back); err != nil {
				t.Fatalf("re-decode %s: %v", a, err)
			}
			b, _ := Marshal(nil, &back)
			if !bytes.Equal(a, b) {
				t.Fatalf("round trip not stable:\n%s\n%s", a, b)
			}
			if back.Kind() != items[i].Kind() {
				t.Fatalf("kind changed on round trip: %q → %q", items[i].Kind(), back.Kind())
			}
		}
	})
}

// sanity: segmentio and encoding/json agree on our struct for the fixtures.
func TestDecodersAgree(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		var a, b []TraceItem
		if err := json.Unmarshal([]byte(fx.Raw), &a); err != nil {
			t.Fatal(err)
		}
		if err := stdjson.Unmarshal([]byte(fx.Raw), &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: decoders disagree", fx.Name)
		}
	}
}

func TestWrongTypeIsTyped(t *testing.T) {
	var it TraceItem
	err := Unmarshal([]byte(`{"outcome":"ok","event":{"request":{"url":"https://a","headers":{"a":1}}}}`), &it)
	if !errors.Is(err, ErrWrongType) {
		t.Fatalf("header value 1: err = %v; want ErrWrongType", err)
	}
	if err := Unmarshal([]byte(`{"outcome":"ok","event":{"request":{"url":"https://a","headers":{"a":"1"}}}}`), &it); err != nil {
		t.Fatal(err)
	}
}
