package processor

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
)

// DLQ record headers. The key is the source record's; the value is the
// source record's after Policy.Raw (secrets in a record that cannot be
// decoded are redacted as text, so the value is not byte-identical when
// DLQHeaderRedacted is set); the source's own headers are kept before these,
// their values through HeaderValue and Raw.
const (
	// DLQHeaderReason is one of ReasonBadJSON, ReasonWrongType,
	// ReasonInvalid or ReasonOversize.
	DLQHeaderReason = "taillight-dlq-reason"
	// DLQHeaderError says what is wrong, at most 1 KiB: the field and the
	// rule, or the kind of JSON error and where. It never quotes the
	// value (the decoder's own messages do, so they are not used): a
	// secret cut short by a JSON error no longer matches a redaction rule.
	DLQHeaderError = "taillight-dlq-error"
	// DLQHeaderTopic, DLQHeaderPartition and DLQHeaderOffset locate the
	// source record (decimal partition and offset).
	DLQHeaderTopic     = "taillight-source-topic"
	DLQHeaderPartition = "taillight-source-partition"
	DLQHeaderOffset    = "taillight-source-offset"
	// DLQHeaderValueDropped is set (to the dropped value's length) when the
	// DLQ topic refused the value as too large and the record was sent
	// without it.
	DLQHeaderValueDropped = "taillight-dlq-value-dropped"
	// DLQHeaderRedacted is set to "1" when redaction changed the value.
	DLQHeaderRedacted = "taillight-dlq-redacted"
	// DLQHeaderTimestamp is the source record's timestamp (unix ms). The
	// DLQ record itself is stamped with the time it was dead-lettered, so
	// the DLQ topic's time retention counts from then: stamped with an old
	// source time, it could be deleted at the broker's next retention
	// check.
	DLQHeaderTimestamp = "taillight-source-timestamp"
)

const maxErrHeader = 1 << 10

// classify maps a decode or validation error to a DLQ reason.
func classify(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, schemas.ErrOutOfRange):
		return ReasonOutOfRange
	case errors.Is(err, schemas.ErrInvalid):
		return ReasonInvalid
	case errors.As(err, &te), errors.Is(err, schemas.ErrWrongType):
		return ReasonWrongType
	}
	return ReasonBadJSON
}

// dlqMessage describes a poison record's error without any of its bytes:
// the decoder's messages quote the input, and an excerpt cut short (14 of
// a card number's 16 digits) no longer matches the redaction rules.
// taillight's own messages (schemas.ErrInvalid, ErrOutOfRange, the size)
// quote no value and are kept.
func dlqMessage(reason string, err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case reason == ReasonOversize, errors.Is(err, schemas.ErrOutOfRange), errors.Is(err, schemas.ErrInvalid):
		return err.Error()
	case errors.As(err, &te):
		kind, _, _ := strings.Cut(te.Value, " ")
		if kind == "" || strings.ContainsAny(kind, `"'`) {
			kind = "value"
		}
		where := te.Field
		if where == "" {
			where = "a field"
		}
		return fmt.Sprintf("decode trace item: %s: a JSON %s where %s is wanted", where, kind, te.Type)
	case reason == ReasonWrongType:
		return "decode trace item: a field has the wrong JSON type (request headers must be strings)"
	}
	// "json: <what>: <input excerpt>"; keep <what>, without a quoted byte.
	msg := err.Error()
	if i := strings.Index(msg, "json: "); i >= 0 {
		msg = msg[i+len("json: "):]
		if j := strings.Index(msg, ": "); j >= 0 {
			msg = msg[:j]
		}
		if k := strings.IndexByte(msg, '\''); k >= 0 {
			if e := strings.IndexByte(msg[k+1:], '\''); e >= 0 {
				msg = msg[:k] + "(a character)" + msg[k+1+e+1:]
			}
		}
		return "malformed JSON: " + msg
	}
	return "malformed JSON"
}

// dlqRecord builds the dead-letter record for a poison source record, with
// the value and the source headers redacted by pol.Raw (a poison record is
// no reason to leak a secret) and an error header that quotes nothing of
// the input (dlqMessage). It is stamped now; the source timestamp is a
// header.
func dlqRecord(topic string, src *kgo.Record, reason string, cause error, pol *redact.Policy, now time.Time) *kgo.Record {
	msg := dlqMessage(reason, cause)
	if len(msg) > maxErrHeader {
		msg = msg[:maxErrHeader]
	}
	h := make([]kgo.RecordHeader, 0, len(src.Headers)+7)
	for _, sh := range src.Headers {
		v := string(sh.Value)
		if r := pol.Raw(redact.HeaderValue(sh.Key, v)); r != v {
			sh.Value = []byte(r)
		}
		h = append(h, sh)
	}
	value := src.Value
	if v := view(value); len(value) > 0 {
		if r := pol.Raw(v); r != v {
			value = []byte(r)
			h = append(h, kgo.RecordHeader{Key: DLQHeaderRedacted, Value: []byte("1")})
		}
	}
	h = append(h,
		kgo.RecordHeader{Key: DLQHeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: DLQHeaderError, Value: []byte(msg)},
		kgo.RecordHeader{Key: DLQHeaderTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: DLQHeaderPartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: DLQHeaderOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kgo.RecordHeader{Key: DLQHeaderTimestamp, Value: strconv.AppendInt(nil, src.Timestamp.UnixMilli(), 10)},
	)
	return &kgo.Record{Topic: topic, Key: src.Key, Value: value, Headers: h, Timestamp: now}
}

// cf holds the one field of request.cf the processor reads.
type cf struct {
	Colo string `json:"colo"`
}

// colo returns request.cf.colo, or "" when cf is absent or has none. The
// common case (a plain string value) is scanned without allocating and the
// result aliases raw (which must outlive it, as with
// schemas.Decoder.DecodeZeroCopy); cf is a flat object in practice, and anything
// unusual goes through the decoder.
func colo(raw []byte) string {
	k := bytes.Index(raw, []byte(`"colo"`))
	if k < 0 {
		return ""
	}
	i := k + len(`"colo"`)
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	if i < len(raw) && raw[i] == ':' {
		i++
		for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
			i++
		}
		if i < len(raw) && raw[i] == '"' {
			if end := bytes.IndexByte(raw[i+1:], '"'); end >= 0 && bytes.IndexByte(raw[i+1:i+1+end], '\\') < 0 {
				// Aliases the record value, like the zero-copy decode.
				return view(raw[i+1 : i+1+end])
			}
		}
	}
	var c cf
	if _, err := json.Parse(raw, &c, 0); err != nil {
		return ""
	}
	return c.Colo
}

func ms(v float64) uint32 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(math.Round(v))
}

// FillRow flattens the redacted item t, read at (partition, offset) from a
// record stamped recMs (unix ms), into r exactly as the processor does,
// reusing r's slices: router templates the route. A null eventTimestamp
// takes recMs, so raw rows and rollups agree on the minute. r's strings
// alias t's. The query benchmark writes history with it.
func FillRow(r *sinks.RawRow, t *schemas.TraceItem, router *redact.Router, partition int32, offset, recMs int64) {
	r.Reset()
	if t.EventTimestamp != nil {
		r.EventTsMs = *t.EventTimestamp
	} else {
		r.EventTsMs = recMs
	}
	r.ScriptName = t.Script()
	r.EventKind = string(t.Kind())
	r.Outcome = t.Outcome
	r.ExecutionModel = t.ExecutionModel
	r.Entrypoint = t.Entrypoint
	r.DispatchNamespace = t.DispatchNamespace
	r.DurableObjectID = t.DurableObjectID
	if v := t.ScriptVersion; v != nil {
		r.ScriptVersion = or(v.ID, v.Tag)
	}
	if e := t.Event; e != nil {
		r.Detail = detail(t, e)
		if q := e.Request; q != nil {
			r.URL = q.URL
			r.Host, r.Route = router.Route(q.URL)
			r.Method = q.Method
			r.Colo = colo(q.Cf)
			for i := range q.Headers {
				r.HeaderNames = append(r.HeaderNames, q.Headers[i].Name)
				r.HeaderValues = append(r.HeaderValues, q.Headers[i].Value)
			}
		}
		if e.Response != nil && e.Response.Status > 0 && e.Response.Status <= math.MaxUint16 {
			r.Status = uint16(e.Response.Status)
		}
	}
	for i := range t.Logs {
		l := &t.Logs[i]
		r.LogLevels = append(r.LogLevels, l.Level)
		r.LogMessages = append(r.LogMessages, view(l.Message))
		r.LogTsMs = append(r.LogTsMs, l.Timestamp)
	}
	for i := range t.Exceptions {
		x := &t.Exceptions[i]
		r.ExcNames = append(r.ExcNames, x.Name)
		r.ExcMessages = append(r.ExcMessages, x.Message)
		r.ExcStacks = append(r.ExcStacks, x.Stack)
		r.ExcTsMs = append(r.ExcTsMs, x.Timestamp)
	}
	r.CPUTimeMs = ms(t.CPUTime)
	r.WallTimeMs = ms(t.WallTime)
	r.Truncated = t.Truncated
	r.RedactionVersion = redact.Version
	r.KafkaPartition = partition
	r.KafkaOffset = offset
	r.WorkerID = t.WorkerID
}

// view is b as a string without copying. b must never be written again:
// here it is a record value, or the fresh copy a redaction made (the
// decoded item's strings alias them the same way).
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// detail is the kind-specific detail column.
func detail(t *schemas.TraceItem, e *schemas.Event) string {
	switch t.Kind() {
	case schemas.KindRPC:
		return e.RPCMethod
	case schemas.KindScheduled:
		if e.Cron != "" {
			return e.Cron
		}
		return string(e.ScheduledTime)
	case schemas.KindAlarm:
		return strings.Trim(string(e.ScheduledTime), `"`)
	case schemas.KindQueue:
		return e.Queue
	case schemas.KindEmail:
		return e.MailFrom
	case schemas.KindWebSocket:
		return e.WebSocketEvent.WebSocketEventType
	case schemas.KindTail:
		var b strings.Builder
		for i, c := range e.ConsumedEvents {
			if i > 0 {
				b.WriteByte(',')
			}
			if c.ScriptName != nil {
				b.WriteString(*c.ScriptName)
			}
		}
		return b.String()
	}
	return ""
}
