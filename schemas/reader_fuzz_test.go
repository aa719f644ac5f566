package schemas

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readAll drains a Reader over r: each item's raw bytes (copied) and its
// re-encoding, and the error that ended the stream (nil for io.EOF).
func readAll(t *testing.T, r io.Reader) (raws, encs [][]byte, err error) {
	rd := NewReader(r)
	for {
		var it TraceItem
		raw, err := rd.Next(&it)
		if err == io.EOF {
			return raws, encs, nil
		}
		if err != nil {
			var ie *ItemError
			if !errors.As(err, &ie) || ie.Index != len(raws) {
				t.Fatalf("error %v is not an *ItemError naming item %d", err, len(raws))
			}
			if _, again := rd.Next(&it); again != io.EOF {
				t.Fatalf("after an error Next = %v; want io.EOF", again)
			}
			return raws, encs, err
		}
		if err := it.Validate(); err != nil {
			t.Fatalf("item %d returned but invalid: %v", len(raws), err)
		}
		enc, err := Marshal(nil, &it)
		if err != nil {
			t.Fatalf("marshal item %d: %v", len(raws), err)
		}
		raws = append(raws, bytes.Clone(raw))
		encs = append(encs, enc)
	}
}

// FuzzReader feeds arbitrary bytes to Reader in one piece, a byte at a time
// and in halves: it must never panic, return the same items and error
// whatever the chunking, return only valid items whose raw bytes are a part of
// the input and decode to the same item, and end for good after an error.
func FuzzReader(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add([]byte(fx.Raw))
	}
	f.Add([]byte(`[{"outcome":"ok"} , {"outcome":"exception"}]`))
	f.Add([]byte("{\"outcome\":\"ok\"}\n\n{\"outcome\":\"ok\"}\r\n"))
	f.Add([]byte(`{"outcome":"ok"}{"outcome":"ok"}`))
	f.Add([]byte(`[{"outcome":"ok"},]`))
	f.Add([]byte(`[{"outcome":"ok"}] trailing`))
	f.Add([]byte("\ufeff[]"))
	f.Fuzz(func(t *testing.T, in []byte) {
		raws, encs, err := readAll(t, bytes.NewReader(in))
		for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(in)), iotest.HalfReader(bytes.NewReader(in))} {
			raws2, encs2, err2 := readAll(t, r)
			if len(raws2) != len(raws) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
				t.Fatalf("chunking changed the result: %d items, %v vs %d items, %v", len(raws), err, len(raws2), err2)
			}
			for i := range raws {
				if !bytes.Equal(raws[i], raws2[i]) || !bytes.Equal(encs[i], encs2[i]) {
					t.Fatalf("chunking changed item %d: %q vs %q", i, raws[i], raws2[i])
				}
			}
		}
		for i, raw := range raws {
			if !bytes.Contains(in, raw) {
				t.Fatalf("raw item %d %q is not part of the input", i, raw)
			}
			var back TraceItem
			if err := Unmarshal(raw, &back); err != nil {
				t.Fatalf("raw item %d does not decode alone: %v", i, err)
			}
			enc, _ := Marshal(nil, &back)
			if !bytes.Equal(enc, encs[i]) {
				t.Fatalf("raw item %d decodes differently alone:\n%s\n%s", i, enc, encs[i])
			}
		}
	})
}
