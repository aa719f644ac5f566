package schemas

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateWorkerID(t *testing.T) {
	f := func(id, wantErr string) {
		t.Helper()
		err := ValidateWorkerID(id)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("ValidateWorkerID(%q) = %v; want nil", id, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("ValidateWorkerID(%q) = %v; want an error with %q", id, err, wantErr)
		}
	}
	f("a", "")
	f("tenant-42", "")
	f("user:42/app@v2.1+beta_x=y", "")
	f(strings.Repeat("z", MaxWorkerIDLen), "")
	f("", "empty")
	f(strings.Repeat("z", MaxWorkerIDLen+1), "129 bytes, longer than 128")
	f("a b", `byte 1 is ' '`)
	f("a\nb", "byte 1 is 0x0a")
	f("é", "byte 0 is 0xc3")
	f("a'b", `byte 1 is '\''`)
	f(`a"b`, `byte 1 is '"'`)
	f("a\\b", `byte 1 is '\\'`)
	f("a?b", "byte 1")
	f("a#b", "byte 1")
	f("a&b", "byte 1")
}

// TestWorkerIDDecode checks workerId through both decoders: a string is
// kept, null and absence mean none, an invalid one fails validation as
// ErrInvalid (ingest's 400, the processor's DLQ reason "invalid").
func TestWorkerIDDecode(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{`{"outcome":"ok","workerId":"app-1"}`, "app-1", ""},
		{`{"outcome":"ok","workerId":"app\u002d1"}`, "app-1", ""}, // escaped: the slow path
		{`{"outcome":"ok","workerId":null}`, "", ""},
		{`{"outcome":"ok"}`, "", ""},
		{`{"outcome":"ok","workerId":""}`, "", ""},
		{`{"outcome":"ok","workerId":"a b"}`, "", "workerId: byte 1"},
		{`{"outcome":"ok","workerId":7}`, "", "cannot unmarshal"},
	} {
		for name, dec := range map[string]func([]byte, *TraceItem) error{
			"Unmarshal": Unmarshal, "UnmarshalZeroCopy": unmarshalZeroCopy, "Decoder": new(Decoder).DecodeZeroCopy,
		} {
			var it TraceItem
			err := dec([]byte(tc.in), &it)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s(%s) = %v; want an error with %q", name, tc.in, err, tc.err)
				}
				if strings.HasPrefix(tc.err, "workerId") && !errors.Is(err, ErrInvalid) {
					t.Errorf("%s(%s): %v is not ErrInvalid", name, tc.in, err)
				}
				continue
			}
			if err != nil || it.WorkerID != tc.want {
				t.Errorf("%s(%s): workerId %q, %v; want %q", name, tc.in, it.WorkerID, err, tc.want)
			}
		}
	}
	// Encoded only when set, and round-tripped.
	it := TraceItem{Outcome: "ok", WorkerID: "app-1"}
	b, err := Marshal(nil, &it)
	if err != nil || !strings.Contains(string(b), `"workerId":"app-1"`) {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back TraceItem
	if err := Unmarshal(b, &back); err != nil || back.WorkerID != "app-1" {
		t.Fatalf("round trip: %q, %v", back.WorkerID, err)
	}
	if b, _ := Marshal(nil, &TraceItem{Outcome: "ok"}); strings.Contains(string(b), "workerId") {
		t.Fatalf("Marshal without a worker = %s", b)
	}
}

func TestKeyWithWorker(t *testing.T) {
	name := "loader"
	f := func(it TraceItem, want string) {
		t.Helper()
		if got := string(Key(&it)); got != want {
			t.Errorf("Key(%+v) = %q; want %q", it, got, want)
		}
	}
	f(TraceItem{ScriptName: &name}, "loader")
	f(TraceItem{}, "")
	f(TraceItem{ScriptName: &name, WorkerID: "app-1"}, "loader/app-1")
	f(TraceItem{WorkerID: "app-1"}, "/app-1")
}
