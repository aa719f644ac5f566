package schemas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLimitsCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	l := DefaultLimits()
	f := func(item, field string) {
		t.Helper()
		var it TraceItem
		if err := Unmarshal([]byte(item), &it); err != nil {
			t.Fatalf("%s: %v", item, err)
		}
		err := l.Check(&it, now)
		if field == "" {
			if err != nil {
				t.Errorf("Check(%.80s) = %v; want nil", item, err)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Check(%.80s) = %v; want a FieldError for %s", item, err, field)
		}
	}
	f(`{"outcome":"ok"}`, "")
	f(`{"outcome":"ok","eventTimestamp":1420070400000}`, "")               // 2015-01-01
	f(`{"outcome":"ok","eventTimestamp":1420070399999}`, "eventTimestamp") // just before
	f(`{"outcome":"ok","eventTimestamp":1796299200000}`, "")               // now + 24h
	f(`{"outcome":"ok","eventTimestamp":1796299200001}`, "eventTimestamp")
	f(`{"outcome":"ok","cpuTime":3600000,"wallTime":604800000}`, "")
	f(`{"outcome":"ok","cpuTime":3600001}`, "cpuTime")
	f(`{"outcome":"ok","wallTime":604800001}`, "wallTime")
	f(`{"outcome":"ok","event":{"response":{"status":0}}}`, "")
	f(`{"outcome":"ok","event":{"response":{"status":101}}}`, "")
	f(`{"outcome":"ok","event":{"response":{"status":70000}}}`, "event.response.status")
	f(`{"outcome":"ok","event":{"response":{"status":-1}}}`, "event.response.status")
	f(`{"outcome":"`+strings.Repeat("x", 65)+`"}`, "outcome")
	f(`{"outcome":"ok","scriptName":"`+strings.Repeat("x", 257)+`"}`, "scriptName")
	f(`{"outcome":"ok","dispatchNamespace":"`+strings.Repeat("x", 257)+`"}`, "dispatchNamespace")
	f(`{"outcome":"ok","durableObjectId":"`+strings.Repeat("x", 257)+`"}`, "durableObjectId")
	f(`{"outcome":"ok","scriptVersion":{"id":"`+strings.Repeat("x", 257)+`"}}`, "scriptVersion.id")
	f(`{"outcome":"ok","executionModel":"`+strings.Repeat("x", 257)+`"}`, "executionModel")
	f(`{"outcome":"ok","event":{"request":{"url":"https://h/`+strings.Repeat("x", 16384)+`","method":"GET","headers":{}}}}`, "event.request.url")
	f(`{"outcome":"ok","event":{"request":{"url":"https://`+strings.Repeat("h", 254)+`/x","method":"GET","headers":{}}}}`, "event.request.url")

	// A value is never quoted in the error: it may be a secret.
	var it TraceItem
	Unmarshal([]byte(`{"outcome":"ok","eventTimestamp":4111111111111111}`), &it)
	if err := l.Check(&it, now); err == nil || strings.Contains(err.Error(), "4111111111111111") {
		t.Errorf("Check = %v; want an error that does not quote the value", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	d := DefaultLimits()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Limits){
		func(l *Limits) { l.MaxCPUTimeMs = 0 },
		func(l *Limits) { l.MaxWallTimeMs = 5e9 },
		func(l *Limits) { l.MaxNameBytes = 0 },
		func(l *Limits) { l.MaxEventAhead = -time.Hour },
		func(l *Limits) { l.MinEventTime = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		l := DefaultLimits()
		mut(&l)
		if err := l.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", l)
		}
	}
}

// TestInvalidUTF8: one rule everywhere: raw invalid UTF-8 anywhere in an
// item (a string, a raw log message, a key) refuses it, in every decoder;
// escaped lone surrogates are valid JSON and accepted.
func TestInvalidUTF8(t *testing.T) {
	for _, in := range []string{
		"{\"outcome\":\"ok\",\"scriptName\":\"a\xff\"}",
		"{\"outcome\":\"ok\",\"logs\":[{\"message\":[\"a\xc3\x28\"],\"level\":\"log\",\"timestamp\":1}]}",
		"{\"outcome\":\"ok\",\"event\":{\"request\":{\"url\":\"https://h/\",\"method\":\"GET\",\"headers\":{\"x\xfe\":\"v\"}}}}",
		"{\"outcome\":\"ok\",\"unknown\":\"\xed\xa0\x80\"}", // an encoded surrogate
	} {
		var it TraceItem
		var dec Decoder
		for name, err := range map[string]error{
			"Unmarshal":         Unmarshal([]byte(in), &it),
			"UnmarshalZeroCopy": unmarshalZeroCopy([]byte(in), &it),
			"DecodeZeroCopy":    dec.DecodeZeroCopy([]byte(in), &it),
		} {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(errText(err), "invalid UTF-8 at byte") {
				t.Errorf("%s(%q) = %v; want invalid UTF-8", name, in, err)
			}
		}
	}
	var it TraceItem
	if err := Unmarshal([]byte(`{"outcome":"ok","scriptName":"a\ud800","logs":[{"message":["\udc00"],"level":"log","timestamp":1}]}`), &it); err != nil {
		t.Errorf("escaped lone surrogates: %v", err)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
