package schemas

import (
	"fmt"

	"github.com/segmentio/encoding/json"
)

// unmarshalZeroCopy is Decoder.DecodeZeroCopy without a reused Decoder:
// the reference the tests compare the Decoder with.
func unmarshalZeroCopy(b []byte, t *TraceItem) error {
	*t = TraceItem{}
	if fastDecode(b, t) {
		return t.Validate()
	}
	*t = TraceItem{}
	if err := checkUTF8(b); err != nil {
		return err
	}
	if _, err := json.Parse(b, t, json.ZeroCopy|json.DontMatchCaseInsensitiveStructFields); err != nil {
		return fmt.Errorf("decode trace item: %w", err)
	}
	return t.Validate()
}
