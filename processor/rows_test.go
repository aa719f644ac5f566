package processor

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

func TestColo(t *testing.T) {
	f := func(cf, want string) {
		t.Helper()
		if got := colo([]byte(cf)); got != want {
			t.Fatalf("colo(%s) = %q; want %q", cf, got, want)
		}
	}
	f(``, "")
	f(`{}`, "")
	f(`{"clientIp":"127.0.0.1"}`, "")
	f(`{"asn":13335,"colo":"SJC","country":"US"}`, "SJC")
	f(`{"colo" : "AMS"}`, "AMS")
	f(`{"colo":"A\u004dS"}`, "AMS") // escaped: through the decoder
	f(`{"colo":null}`, "")
	f(`{"colo":5}`, "")
}

func TestClassify(t *testing.T) {
	f := func(v, want string) {
		t.Helper()
		var it schemas.TraceItem
		err := new(schemas.Decoder).DecodeZeroCopy([]byte(v), &it)
		if err == nil {
			t.Fatalf("%s decoded without error", v)
		}
		if got := classify(err); got != want {
			t.Fatalf("classify(%v) = %q; want %q", err, got, want)
		}
	}
	f(`{"outcome":"ok",`, ReasonBadJSON)
	f(`not json`, ReasonBadJSON)
	f(`[1,2]`, ReasonWrongType)
	f(`{"outcome":"ok","cpuTime":"fast"}`, ReasonWrongType)
	f(`{"outcome":"ok","event":{"request":{"url":"https://a","headers":{"a":1}}}}`, ReasonWrongType)
	f(`{"outcome":""}`, ReasonInvalid)
	f(`{"outcome":"ok","eventTimestamp":-5}`, ReasonInvalid)
	f(`{"outcome":"ok","workerId":"a b"}`, ReasonInvalid)
	f(`{"outcome":"ok","workerId":"`+strings.Repeat("w", 129)+`"}`, ReasonInvalid)
	f(`{"outcome":"ok","workerId":5}`, ReasonWrongType)
	if got := classify(fmt.Errorf("x: %w", errors.New("EOF"))); got != ReasonBadJSON {
		t.Fatalf("classify(EOF) = %q", got)
	}
}

func TestFillRowWorker(t *testing.T) {
	var it schemas.TraceItem
	if err := schemas.Unmarshal([]byte(`{"outcome":"ok","scriptName":"loader","workerId":"app-1","dispatchNamespace":"customers","eventTimestamp":60000}`), &it); err != nil {
		t.Fatal(err)
	}
	var r sinks.RawRow
	FillRow(&r, &it, nil, 0, 7, 0)
	if r.WorkerID != "app-1" || r.DispatchNamespace != "customers" || r.ScriptName != "loader" {
		t.Fatalf("row worker %q namespace %q script %q", r.WorkerID, r.DispatchNamespace, r.ScriptName)
	}
}
