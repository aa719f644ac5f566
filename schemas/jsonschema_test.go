package schemas

import (
	stdjson "encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonNames lists the JSON property names of a struct type.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestJSONSchemaMatchesTypes keeps the published schema and the Go types in
// step: every property of each object is a field of the matching type.
func TestJSONSchemaMatchesTypes(t *testing.T) {
	var s map[string]any
	if err := stdjson.Unmarshal(JSONSchema, &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	defs := s["$defs"].(map[string]any)
	props := func(m map[string]any) []string { return keys(m["properties"].(map[string]any)) }
	def := func(name string) map[string]any { return defs[name].(map[string]any) }
	sub := func(m map[string]any, name string) map[string]any {
		return m["properties"].(map[string]any)[name].(map[string]any)
	}
	check := func(what string, got []string, typ reflect.Type) {
		t.Helper()
		if want := jsonNames(typ); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: schema has %v; Go type %s has %v", what, got, typ.Name(), want)
		}
	}
	check("TraceItem", props(s), reflect.TypeFor[TraceItem]())
	check("log", props(def("log")), reflect.TypeFor[Log]())
	check("exception", props(def("exception")), reflect.TypeFor[Exception]())
	check("diagnosticsChannelEvent", props(def("diagnosticsChannelEvent")), reflect.TypeFor[DiagnosticEvent]())
	check("request", props(sub(def("fetch"), "request")), reflect.TypeFor[Request]())
	check("scriptVersion", props(sub(s, "scriptVersion")), reflect.TypeFor[ScriptVersion]())
	check("getWebSocketEvent", props(sub(def("hibernatableWebSocket"), "getWebSocketEvent")), reflect.TypeFor[WebSocketEvent]())
	var event []string
	for _, d := range []string{"fetch", "jsrpc", "scheduled", "alarm", "queue", "email", "tail", "hibernatableWebSocket"} {
		event = append(event, props(def(d))...)
	}
	sort.Strings(event)
	event = slices.Compact(event)
	check("event (union of shapes)", event, reflect.TypeFor[Event]())
}
