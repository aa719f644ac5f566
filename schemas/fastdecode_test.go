package schemas

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/encoding/json"
)

// segmentioDecode is the decoding fastDecode must agree with.
func segmentioDecode(b []byte, t *TraceItem) error {
	*t = TraceItem{}
	_, err := json.Parse(b, t, json.ZeroCopy|json.DontMatchCaseInsensitiveStructFields)
	return err
}

// checkFastAgrees fails when fastDecode accepts in but decodes it
// differently from segmentio, or accepts what segmentio refuses.
func checkFastAgrees(t *testing.T, in []byte) (accepted bool) {
	t.Helper()
	var fast, slow TraceItem
	if !fastDecode(bytes.Clone(in), &fast) {
		return false
	}
	if err := segmentioDecode(in, &slow); err != nil {
		t.Fatalf("fast path accepted what segmentio refuses (%v): %q", err, in)
	}
	if !reflect.DeepEqual(fast, slow) {
		a, _ := Marshal(nil, &fast)
		b, _ := Marshal(nil, &slow)
		t.Fatalf("fast path and segmentio disagree on %q:\nfast: %s\nslow: %s", in, a, b)
	}
	return true
}

func TestFastDecodeAgrees(t *testing.T) {
	accepted := 0
	for _, item := range fixtureItems(t) {
		if checkFastAgrees(t, item) {
			accepted++
		}
	}
	if !checkFastAgrees(t, []byte(typicalItem)) {
		t.Error("fast path refused the typical item")
	}
	for _, in := range []string{
		`{"outcome":"ok","event":null,"scriptName":null,"eventTimestamp":null}`,
		`{"outcome":"ok","logs":[],"exceptions":[],"diagnosticsChannelEvents":[],"scriptTags":[]}`,
		`{"outcome":"ok","event":{"request":{"url":"u","method":"GET","headers":{}}}}`,
		`{"outcome":"ok","event":{"request":{"url":"a\"b\u00e9","headers":{"a":"b"},"cf":{"x":[1,-2.5e3,true,false,null,"\u00e9\n"]}}}}`,
		`{"outcome":"ok","event":{"request":{"headers":{"sec-ch-ua":"\"Chromium\";v=\"140\"","x":"\ud800\u00e9\/"}}}}`,
		`{"outcome":"ok","event":{"getWebSocketEvent":{"webSocketEventType":"close","code":1000,"wasClean":true}}}`,
		`{"outcome":"ok","event":{"consumedEvents":[{"scriptName":"a"},{"scriptName":null},{}]}}`,
		`{"outcome":"ok","event":{"queue":"q","batchSize":3},"scriptVersion":{"id":"i","tag":"t","message":"m"}}`,
		`{"outcome":"ok","cpuTime":1.5e-3,"wallTime":-0,"unknown":{"a":[{}]},"truncated":true}`,
		`{"Outcome":"ok","outcomE":"x"}`,
		` {"outcome" : "ok" , "logs" : [ {"message" : [ 1 , "x" ] , "level":"log","timestamp":-1,"errorInfo":{}} ] } `,
	} {
		if !checkFastAgrees(t, []byte(in)) {
			t.Errorf("fast path refused %s", in)
		}
	}
	t.Logf("fast path took %d fixture items", accepted)
	if accepted == 0 {
		t.Error("fast path refused every fixture")
	}
	// Inputs the fast path must leave to segmentio.
	for _, in := range []string{
		`{"outcome":"ok","outcome":"x"}`,
		`{"outcome":"ok","cpuTime":"1"}`,
		`{"outcome":"ok","event":{"response":{"status":1.5}}}`,
		`{"outcome":"ok","logs":null}`,
		`{"outcome":"ok","event":{"request":{"headers":{"a":1}}}}`,
		"{\"outcome\":\"o\xffk\"}",
		`{"outcome":"ok"} x`,
		`{"outcome":"ok",}`,
		`{"outcome":01}`,
	} {
		var it TraceItem
		if fastDecode([]byte(in), &it) {
			t.Errorf("fast path accepted %s", in)
		}
	}
}

// fixtureItems splits every fixture (a JSON array) into its items.
func fixtureItems(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, fx := range loadFixtures(t) {
		var items []stdjson.RawMessage
		if err := stdjson.Unmarshal([]byte(fx.Raw), &items); err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		for _, it := range items {
			out = append(out, []byte(it))
		}
	}
	return out
}

func FuzzFastDecode(f *testing.F) {
	for _, item := range fixtureItems(f) {
		f.Add(item)
	}
	f.Add([]byte(typicalItem))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkFastAgrees(t, in)
	})
}

func BenchmarkUnmarshalZeroCopyTypicalSegmentio(b *testing.B) {
	raw := []byte(typicalItem)
	var it TraceItem
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := segmentioDecode(raw, &it); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFastDecodeAllocs guards the fast path's allocation count: the item's
// event block, eventTimestamp, scriptName, the logs and the headers.
func TestFastDecodeAllocs(t *testing.T) {
	raw := []byte(typicalItem)
	var it TraceItem
	n := testing.AllocsPerRun(100, func() {
		if err := unmarshalZeroCopy(raw, &it); err != nil {
			t.Fatal(err)
		}
	})
	if n > 5 {
		t.Errorf("unmarshalZeroCopy of the typical item: %v allocs, want at most 5", n)
	}
}

// TestDecoderReuseAgrees decodes every fixture and test item, in order and
// then shuffled against each other, with one Decoder: each result must
// equal a fresh unmarshalZeroCopy, so nothing of an item leaks into the next.
func TestDecoderReuseAgrees(t *testing.T) {
	items := append(fixtureItems(t), []byte(typicalItem),
		[]byte(`{"outcome":"ok","event":{"request":{"url":"u","headers":{}}},"logs":[]}`),
		[]byte(`{"outcome":"ok","scriptName":null,"eventTimestamp":null,"event":null}`),
		[]byte(`{"outcome":"ok","scriptVersion":{"tag":"t"},"logs":[{"message":["x"],"level":"log","timestamp":1}]}`))
	var dec Decoder
	var got TraceItem
	for round := 0; round < 3; round++ {
		for k := range items {
			in := items[(k*7+round*3)%len(items)]
			var want TraceItem
			wantErr := unmarshalZeroCopy(in, &want)
			err := dec.DecodeZeroCopy(in, &got)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("Decoder error %v, unmarshalZeroCopy error %v on %s", err, wantErr, in)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				a, _ := Marshal(nil, &got)
				b, _ := Marshal(nil, &want)
				t.Fatalf("Decoder and unmarshalZeroCopy disagree on %s:\ndecoder: %s\nfresh:   %s", in, a, b)
			}
		}
	}
	raw := []byte(typicalItem)
	if n := testing.AllocsPerRun(100, func() {
		if err := dec.DecodeZeroCopy(raw, &got); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("Decoder on the typical item: %v allocs, want 0", n)
	}
}

// TestKeySet checks that each decoder's keySet finds every name it holds,
// and nothing else: a name's prefix, its extension, its case or "".
func TestKeySet(t *testing.T) {
	sets := []*keySet{traceItemKeys, scriptVersionKeys, eventKeys, requestKeys, responseKeys,
		webSocketKeys, consumedKeys, logKeys, exceptionKeys, diagKeys}
	for _, s := range sets {
		held := map[string]bool{}
		for _, name := range s.names {
			held[name] = name != ""
		}
		for h, name := range s.names {
			if name == "" {
				continue
			}
			if got := s.find(name); got != int(s.nums[h]) {
				t.Errorf("find(%q) = %d; want %d", name, got, s.nums[h])
			}
			for _, other := range []string{name[:len(name)-1], name + "s", strings.ToUpper(name[:1]) + name[1:], ""} {
				if got := s.find(other); got >= 0 && !held[other] {
					t.Errorf("find(%q) = %d; want -1", other, got)
				}
			}
		}
	}
}

// plainRun, which tests 8 bytes at a time, stops where a byte loop does:
// at every position of a quote, backslash or control byte, among bytes
// just above and below each of them and multi-byte UTF-8.
func TestPlainRun(t *testing.T) {
	naive := func(b []byte, j int) int {
		for ; j < len(b); j++ {
			if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
				return j
			}
		}
		return j
	}
	fill := []byte{'a', ' ', '!', '#', '[', ']', 0x7f, 0x80, 0xc3, 0xff, 0x21, 0x5d}
	stops := []byte{'"', '\\', 0x00, 0x01, 0x1f, '\n'}
	for n := 0; n <= 26; n++ {
		b := make([]byte, n)
		for f := range fill {
			for i := range b {
				b[i] = fill[(f+i)%len(fill)]
			}
			for from := 0; from <= n; from++ {
				if got, want := plainRun(b, from), naive(b, from); got != want {
					t.Fatalf("plain %q from %d: %d, want %d", b, from, got, want)
				}
			}
			for p := 0; p < n; p++ {
				for _, s := range stops {
					old := b[p]
					b[p] = s
					for from := 0; from <= n; from++ {
						if got, want := plainRun(b, from), naive(b, from); got != want {
							t.Fatalf("%q from %d: %d, want %d", b, from, got, want)
						}
					}
					b[p] = old
				}
			}
		}
	}
}
