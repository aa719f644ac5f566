// Package schemas defines the TraceItem record exactly as the Workers runtime
// serialises it for Tail Workers, its JSON codec and the Kafka record
// conventions: the wire format, nothing else. The ClickHouse SQL (DDL and
// saved queries) is package storage's.
package schemas

import (
	"github.com/segmentio/encoding/json"
)

// TraceItem is one Worker invocation as a Tail Worker receives it
// (@cloudflare/workers-types TraceItem). Fields the runtime may send as null
// are pointers. Unknown fields are ignored when decoding.
type TraceItem struct {
	Event                    *Event            `json:"event"`
	EventTimestamp           *int64            `json:"eventTimestamp"`
	Logs                     []Log             `json:"logs"`
	Exceptions               []Exception       `json:"exceptions"`
	DiagnosticsChannelEvents []DiagnosticEvent `json:"diagnosticsChannelEvents"`
	ScriptName               *string           `json:"scriptName"`
	Entrypoint               string            `json:"entrypoint,omitempty"`
	ScriptVersion            *ScriptVersion    `json:"scriptVersion,omitempty"`
	DispatchNamespace        string            `json:"dispatchNamespace,omitempty"`
	ScriptTags               []string          `json:"scriptTags,omitempty"`
	DurableObjectID          string            `json:"durableObjectId,omitempty"`
	// WorkerID names the Dynamic Worker that produced the item. The runtime
	// does not send it: a Tail Worker adds it (per item, or ingest applies
	// a POST's ?workerId= to every item). Empty or null means none.
	WorkerID       string  `json:"workerId,omitempty"`
	Outcome        string  `json:"outcome"`
	ExecutionModel string  `json:"executionModel"`
	Truncated      bool    `json:"truncated"`
	CPUTime        float64 `json:"cpuTime"`
	WallTime       float64 `json:"wallTime"`
}

// Event is the union of every event shape a TraceItem can carry. Exactly the
// fields of one shape are set; Kind derives which.
type Event struct {
	// fetch
	Request  *Request  `json:"request,omitempty"`
	Response *Response `json:"response,omitempty"`
	// jsrpc
	RPCMethod string `json:"rpcMethod,omitempty"`
	// scheduled (cron, numeric scheduledTime) and alarm (ISO string scheduledTime)
	Cron          string          `json:"cron,omitempty"`
	ScheduledTime json.RawMessage `json:"scheduledTime,omitempty"`
	// queue
	Queue     string `json:"queue,omitempty"`
	BatchSize *int64 `json:"batchSize,omitempty"`
	// email
	MailFrom string `json:"mailFrom,omitempty"`
	RcptTo   string `json:"rcptTo,omitempty"`
	RawSize  *int64 `json:"rawSize,omitempty"`
	// tail
	ConsumedEvents []TailConsumedEvent `json:"consumedEvents,omitempty"`
	// hibernatable WebSocket
	WebSocketEvent *WebSocketEvent `json:"getWebSocketEvent,omitempty"`
}

// Request is the fetch event's request. Header names are lower-case as the
// runtime records them; Cf is kept verbatim.
type Request struct {
	URL     string          `json:"url"`
	Method  string          `json:"method"`
	Headers Headers         `json:"headers"`
	Cf      json.RawMessage `json:"cf,omitempty"`
}

// Response is the fetch event's response; absent for a thrown handler or a
// WebSocket upgrade.
type Response struct {
	Status int `json:"status"`
}

// TailConsumedEvent names a script whose events a tail worker consumed.
type TailConsumedEvent struct {
	ScriptName *string `json:"scriptName"`
}

// WebSocketEvent is a hibernatable WebSocket message, close or error.
type WebSocketEvent struct {
	WebSocketEventType string `json:"webSocketEventType"`
	Code               *int   `json:"code,omitempty"`
	WasClean           *bool  `json:"wasClean,omitempty"`
}

// Log is one console call; Message is the JSON array of its arguments (or a
// string when the runtime truncated it), kept verbatim. ErrorInfo, sent by
// newer runtimes for console.error, holds the name, message and stack of each
// Error argument (null for the others).
type Log struct {
	Message   json.RawMessage `json:"message"`
	Level     string          `json:"level"`
	Timestamp int64           `json:"timestamp"`
	ErrorInfo json.RawMessage `json:"errorInfo,omitempty"`
}

// Exception is an uncaught exception or rejected waitUntil promise.
type Exception struct {
	Stack     string `json:"stack,omitempty"`
	Name      string `json:"name"`
	Message   string `json:"message"`
	Timestamp int64  `json:"timestamp"`
}

// DiagnosticEvent is a node:diagnostics_channel publication.
type DiagnosticEvent struct {
	Channel   string          `json:"channel"`
	Message   json.RawMessage `json:"message"`
	Timestamp int64           `json:"timestamp"`
}

// ScriptVersion identifies a Worker version.
type ScriptVersion struct {
	ID      string `json:"id,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Message string `json:"message,omitempty"`
}

// Kind names the type of invocation behind a TraceItem.
type Kind string

// Event kinds, as stored in trace_items.event_kind.
const (
	KindNone      Kind = "none" // event was null
	KindFetch     Kind = "fetch"
	KindRPC       Kind = "rpc"
	KindScheduled Kind = "scheduled"
	KindAlarm     Kind = "alarm"
	KindQueue     Kind = "queue"
	KindEmail     Kind = "email"
	KindTail      Kind = "tail"
	KindWebSocket Kind = "websocket"
	KindHibernate Kind = "hibernate"
	KindConnect   Kind = "connect"
	KindCustom    Kind = "custom"
)

// Kind derives the event kind from the shape of the event. connect, hibernate
// and custom events all serialise as an empty object in buffered tail events;
// they are reported as custom. So is a tail event with no consumed events,
// which encodes as an empty object too (consumedEvents is omitted when empty).
func (t *TraceItem) Kind() Kind {
	e := t.Event
	switch {
	case e == nil:
		return KindNone
	case e.Request != nil:
		return KindFetch
	case e.RPCMethod != "":
		return KindRPC
	case e.Cron != "":
		return KindScheduled
	case len(e.ScheduledTime) > 0:
		if e.ScheduledTime[0] == '"' {
			return KindAlarm
		}
		return KindScheduled
	case e.Queue != "" || e.BatchSize != nil:
		return KindQueue
	case e.MailFrom != "" || e.RcptTo != "" || e.RawSize != nil:
		return KindEmail
	case len(e.ConsumedEvents) > 0:
		return KindTail
	case e.WebSocketEvent != nil:
		return KindWebSocket
	default:
		return KindCustom
	}
}

// Script returns scriptName, or "" when the runtime sent null.
func (t *TraceItem) Script() string {
	if t.ScriptName == nil {
		return ""
	}
	return *t.ScriptName
}

// Status returns the fetch response status, or 0 when there is none.
func (t *TraceItem) Status() int {
	if t.Event == nil || t.Event.Response == nil {
		return 0
	}
	return t.Event.Response.Status
}
