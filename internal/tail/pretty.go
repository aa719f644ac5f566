package tail

import (
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/taillight/taillight/schemas"
)

// ANSI colours of the pretty format.
const (
	reset  = "\x1b[0m"
	dim    = "\x1b[2m"
	bold   = "\x1b[1m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
)

// appendPretty appends one invocation: a header line (time, script, what was
// invoked, status, outcome, URL), then one indented line per log and per
// exception.
//
//	2026-11-22T03:40:00.123Z  shop  GET 500 exception  https://shop.dev/cart
//	2026-11-22T03:40:01.007Z  customers/shop[tenant-42]  GET 200 ok  https://…
//	    (error) "cart failed" {"id":1}
//	    (exception) TypeError: x is undefined
func appendPretty(b []byte, it *schemas.TraceItem, color bool) []byte {
	paint := func(b []byte, c, s string) []byte {
		if !color || c == "" {
			return append(b, s...)
		}
		b = append(b, c...)
		b = append(b, s...)
		return append(b, reset...)
	}
	if it.EventTimestamp != nil {
		b = paint(b, dim, time.UnixMilli(*it.EventTimestamp).UTC().Format("2006-01-02T15:04:05.000Z"))
	} else {
		b = paint(b, dim, "-")
	}
	b = append(b, "  "...)
	// namespace/script[worker], as the dashboard labels a Worker.
	script := it.Script()
	if script == "" {
		script = "(no script)"
	}
	if it.DispatchNamespace != "" {
		script = it.DispatchNamespace + "/" + script
	}
	if it.WorkerID != "" {
		script += "[" + it.WorkerID + "]"
	}
	b = paint(b, bold, string(appendOneLine(nil, script)))
	b = append(b, "  "...)
	e := it.Event
	switch k := it.Kind(); {
	case e != nil && e.Request != nil:
		b = appendOneLine(b, e.Request.Method)
		b = append(b, ' ')
		if st := it.Status(); st > 0 {
			b = paint(b, statusColor(st), strconv.Itoa(st))
		} else {
			b = paint(b, yellow, "---")
		}
	case k == schemas.KindRPC:
		b = append(b, "rpc "...)
		b = append(b, e.RPCMethod...)
	case k == schemas.KindScheduled && e.Cron != "":
		b = append(b, "scheduled "...)
		b = append(b, e.Cron...)
	case k == schemas.KindQueue:
		b = append(b, "queue "...)
		b = append(b, e.Queue...)
	case k == schemas.KindEmail:
		b = append(b, "email "...)
		b = append(b, e.RcptTo...)
	case k == schemas.KindWebSocket:
		b = append(b, "websocket "...)
		b = append(b, e.WebSocketEvent.WebSocketEventType...)
	default:
		b = append(b, k...)
	}
	b = append(b, ' ')
	oc := green
	if it.Outcome != "ok" {
		oc = red
	}
	b = paint(b, oc, orDash(it.Outcome))
	if e != nil && e.Request != nil {
		b = append(b, "  "...)
		b = appendOneLine(b, e.Request.URL)
	}
	if it.Truncated {
		b = paint(b, yellow, "  (truncated)")
	}
	b = append(b, '\n')
	for _, l := range it.Logs {
		b = append(b, "    "...)
		b = paint(b, levelColor(l.Level), "("+orDash(l.Level)+")")
		b = append(b, ' ')
		b = appendMessage(b, l.Message)
		b = append(b, '\n')
	}
	for _, x := range it.Exceptions {
		b = append(b, "    "...)
		b = paint(b, red, "(exception)")
		b = append(b, ' ')
		b = appendOneLine(b, x.Name)
		b = append(b, ": "...)
		b = appendOneLine(b, x.Message)
		b = append(b, '\n')
	}
	return b
}

// appendMessage renders a log's arguments as console.log would join them:
// strings bare, anything else as JSON, separated by spaces. A message that
// is not a JSON array (the runtime's truncation string) is shown as it is.
func appendMessage(b []byte, m json.RawMessage) []byte {
	var args []json.RawMessage
	if json.Unmarshal(m, &args) != nil {
		var s string
		if json.Unmarshal(m, &s) == nil {
			return appendOneLine(b, s)
		}
		return appendOneLine(b, string(m))
	}
	for i, a := range args {
		if i > 0 {
			b = append(b, ' ')
		}
		var s string
		if len(a) > 0 && a[0] == '"' && json.Unmarshal(a, &s) == nil {
			b = appendOneLine(b, s)
		} else {
			b = append(b, a...)
		}
	}
	return b
}

// appendOneLine keeps one invocation's log on one line and strips control
// bytes, so a log message cannot move the cursor or recolour the terminal.
func appendOneLine(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '\n':
			b = append(b, `\n`...)
		case r < 0x20 || r == 0x7f:
			b = append(b, '?')
		default:
			b = append(b, string(r)...)
		}
	}
	return b
}

func statusColor(s int) string {
	switch {
	case s >= 500:
		return red
	case s >= 400:
		return yellow
	case s >= 300:
		return cyan
	}
	return green
}

func levelColor(l string) string {
	switch strings.ToLower(l) {
	case "error":
		return red
	case "warn":
		return yellow
	case "debug":
		return dim
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
