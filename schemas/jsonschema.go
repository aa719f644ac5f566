package schemas

import _ "embed"

// JSONSchema is the JSON Schema (draft 2020-12) of one TraceItem record, for
// producers written in other languages. `taillight` serves nothing from it;
// it is the written contract, kept in step with the Go types by tests.
//
//go:embed traceitem.schema.json
var JSONSchema []byte
