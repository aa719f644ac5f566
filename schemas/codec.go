package schemas

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/segmentio/encoding/json"
)

// Kafka record conventions shared by producers and the processor.
const (
	// DefaultTopic is the topic TraceItems are published to.
	DefaultTopic = "trace-items"
	// DLQSuffix is appended to the source topic to name its dead-letter topic.
	DLQSuffix = ".dlq"
	// ContentType is the value of the HeaderContentType record header.
	ContentType = "application/json"
	// SchemaVersion is the value of the HeaderSchemaVersion record header.
	SchemaVersion = "1"
	// HeaderContentType and HeaderSchemaVersion name the record headers every
	// producer sets.
	HeaderContentType   = "content-type"
	HeaderSchemaVersion = "taillight-schema-version"
	// MaxItemBytes is the largest encoded TraceItem accepted. The runtime
	// truncates logs at 256 KiB per message; an item beyond 1 MiB is refused.
	MaxItemBytes = 1 << 20
)

// ErrInvalid marks a TraceItem that decodes as JSON but breaks the contract.
var ErrInvalid = errors.New("invalid trace item")

// Key returns the Kafka record key for an item: its script name, followed
// by "/" and its workerId when it has one. Dynamic Workers all share their
// loader's scriptName (or none), so without the id every item of a platform
// of Dynamic Workers would land on one partition.
func Key(t *TraceItem) []byte {
	if t.WorkerID != "" {
		return []byte(t.Script() + "/" + t.WorkerID)
	}
	if t.ScriptName == nil {
		return nil
	}
	return []byte(*t.ScriptName)
}

// Unmarshal decodes one TraceItem from b and validates it. Unknown fields are
// ignored. b may be reused by the caller once Unmarshal returns: nothing in t
// aliases it.
func Unmarshal(b []byte, t *TraceItem) error {
	*t = TraceItem{}
	// One copy of the input that every string aliases: a single allocation
	// instead of one per string.
	if fastDecode(bytes.Clone(b), t) {
		return t.Validate()
	}
	*t = TraceItem{}
	if err := checkUTF8(b); err != nil {
		return err
	}
	if _, err := json.Parse(b, t, json.DontMatchCaseInsensitiveStructFields); err != nil {
		return fmt.Errorf("decode trace item: %w", err)
	}
	return t.Validate()
}

// Decoder decodes items without copying strings, for a loop that is done
// with each item before it decodes the next: the item's event, request, response,
// eventTimestamp, scriptName, scriptVersion, logs and headers live in the
// Decoder and are reused, so a typical item decodes without allocating.
// The zero value is ready; a Decoder is for one goroutine.
type Decoder struct {
	blk     fetchBlock
	ts      int64
	name    string
	sv      ScriptVersion
	logs    []Log
	headers Headers
}

// DecodeZeroCopy is Unmarshal without copying strings, into memory owned
// by dec: the strings and raw JSON in t alias b, so b must stay unmodified
// for as long as t (or any string taken from it) is in use, and what t
// points to is overwritten by the next DecodeZeroCopy. The processor uses
// it on Kafka record values, which franz-go never reuses.
func (dec *Decoder) DecodeZeroCopy(b []byte, t *TraceItem) error {
	*t = TraceItem{}
	if fastDecodeInto(b, t, dec) {
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

// Marshal encodes t as JSON, appended to dst. Header names are sorted, as the
// runtime sends them, so the output is deterministic.
func Marshal(dst []byte, t *TraceItem) ([]byte, error) {
	b, err := json.Append(dst, t, json.SortMapKeys)
	if err != nil {
		return dst, fmt.Errorf("encode trace item: %w", err)
	}
	return b, nil
}

// Validate checks what the decoder cannot: the fields every runtime sets.
func (t *TraceItem) Validate() error {
	if t.Outcome == "" {
		return fmt.Errorf("%w: outcome is missing", ErrInvalid)
	}
	if t.EventTimestamp != nil && *t.EventTimestamp < 0 {
		return fmt.Errorf("%w: eventTimestamp is negative", ErrInvalid)
	}
	if t.CPUTime < 0 || t.WallTime < 0 {
		return fmt.Errorf("%w: cpuTime/wallTime must not be negative", ErrInvalid)
	}
	if e := t.Event; e != nil && e.Request != nil && e.Request.URL == "" {
		return fmt.Errorf("%w: event.request.url is empty", ErrInvalid)
	}
	if t.WorkerID != "" {
		if err := ValidateWorkerID(t.WorkerID); err != nil {
			return fmt.Errorf("%w: workerId: %v", ErrInvalid, err)
		}
	}
	return nil
}

// ItemError locates a bad item in a batch: Index counts items from 0, Line is
// the 1-based input line for NDJSON (0 for a JSON array) and Offset the byte
// offset where the item starts.
type ItemError struct {
	Index  int
	Line   int
	Offset int64
	Err    error
}

func (e *ItemError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("item %d (line %d): %v", e.Index, e.Line, e.Err)
	}
	return fmt.Sprintf("item %d (byte offset %d): %v", e.Index, e.Offset, e.Err)
}

func (e *ItemError) Unwrap() error { return e.Err }

// Reader reads TraceItems from a JSON array (as a Tail Worker sends it), a
// single JSON object, or NDJSON, detected from the first non-space byte and
// the bytes after the first object. Each item is returned with its raw bytes.
type Reader struct {
	// Check, when set, is run on every decoded item; its error is
	// returned as the item's *ItemError (e.g. Limits.Check).
	Check func(*TraceItem) error

	r       *bufio.Reader
	mode    byte // 0 undecided, '[' array, '{' ndjson/objects
	index   int
	line    int
	offset  int64
	done    bool
	scratch []byte
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), line: 1}
}

// Next decodes the next item into t and returns its raw JSON (valid until the
// next call). It returns io.EOF after the last item, and an *ItemError for a
// malformed item; the stream cannot continue after an error.
func (rd *Reader) Next(t *TraceItem) ([]byte, error) {
	if rd.done {
		return nil, io.EOF
	}
	if err := rd.skipSpace(); err != nil {
		if err == io.EOF {
			rd.done = true
			if rd.mode == '[' {
				return nil, rd.fail(errors.New("unexpected end of input: JSON array not closed"))
			}
			return nil, io.EOF
		}
		return nil, rd.fail(err)
	}
	c, _ := rd.r.Peek(1)
	switch rd.mode {
	case 0:
		switch c[0] {
		case '[':
			rd.mode = '['
			rd.consume(1)
			if err := rd.skipSpace(); err != nil {
				return nil, rd.fail(errors.New("unexpected end of input: JSON array not closed"))
			}
			if c, _ := rd.r.Peek(1); c[0] == ']' {
				rd.consume(1)
				return nil, rd.finishArray()
			}
		case '{':
			rd.mode = '{'
		default:
			return nil, rd.fail(fmt.Errorf("expected a JSON array or object, found %q", c[0]))
		}
	case '[':
		if rd.index > 0 {
			switch c[0] {
			case ']':
				rd.consume(1)
				return nil, rd.finishArray()
			case ',':
				rd.consume(1)
				if err := rd.skipSpace(); err != nil {
					return nil, rd.fail(errors.New("unexpected end of input after ','"))
				}
			default:
				return nil, rd.fail(fmt.Errorf("expected ',' or ']' after item, found %q", c[0]))
			}
		}
	case '{':
		if c[0] != '{' {
			return nil, rd.fail(fmt.Errorf("expected a JSON object, found %q", c[0]))
		}
	}
	if c, _ := rd.r.Peek(1); c[0] != '{' {
		return nil, rd.fail(fmt.Errorf("expected a JSON object, found %q", c[0]))
	}
	startLine, startOff := rd.line, rd.offset
	raw, err := rd.readValue()
	if err != nil {
		return nil, rd.failAt(startLine, startOff, err)
	}
	if err := Unmarshal(raw, t); err != nil {
		return nil, rd.failAt(startLine, startOff, err)
	}
	if rd.Check != nil {
		if err := rd.Check(t); err != nil {
			return nil, rd.failAt(startLine, startOff, err)
		}
	}
	rd.index++
	return raw, nil
}

// Offset is the byte offset in the input just past the last item Next
// returned: that item's raw JSON is input[Offset()-len(raw):Offset()].
func (rd *Reader) Offset() int64 { return rd.offset }

func (rd *Reader) finishArray() error {
	rd.done = true
	if err := rd.skipSpace(); err == nil {
		return rd.fail(errors.New("unexpected data after the JSON array"))
	}
	return io.EOF
}

func (rd *Reader) fail(err error) error { return rd.failAt(rd.line, rd.offset, err) }

func (rd *Reader) failAt(line int, off int64, err error) error {
	rd.done = true
	ie := &ItemError{Index: rd.index, Offset: off, Err: err}
	if rd.mode == '{' {
		ie.Line = line
	}
	return ie
}

func (rd *Reader) consume(n int) {
	rd.r.Discard(n)
	rd.offset += int64(n)
}

func (rd *Reader) skipSpace() error {
	for {
		c, err := rd.r.ReadByte()
		if err != nil {
			return err
		}
		switch c {
		case '\n':
			rd.line++
			rd.offset++
		case ' ', '\t', '\r':
			rd.offset++
		default:
			return rd.r.UnreadByte()
		}
	}
}

// readValue reads one JSON object, tracking strings and nesting, and returns
// its bytes. It checks only structure; Unmarshal checks the rest. It scans the
// reader's buffer a chunk at a time.
func (rd *Reader) readValue() ([]byte, error) {
	buf := rd.scratch[:0]
	depth := 0
	inStr, esc := false, false
	for {
		if rd.r.Buffered() == 0 {
			if _, err := rd.r.Peek(1); err != nil {
				if err == io.EOF {
					return nil, errors.New("unexpected end of input inside an item")
				}
				return nil, err
			}
		}
		chunk, _ := rd.r.Peek(rd.r.Buffered())
		for i, c := range chunk {
			switch {
			case inStr:
				switch {
				case esc:
					esc = false
				case c == '\\':
					esc = true
				case c == '"':
					inStr = false
				case c == '\n':
					return nil, errors.New("newline inside a JSON string")
				}
			case c == '"':
				inStr = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					buf = append(buf, chunk[:i+1]...)
					rd.r.Discard(i + 1)
					if len(buf) > MaxItemBytes {
						return nil, fmt.Errorf("%w: item exceeds %d bytes", ErrItemTooLarge, MaxItemBytes)
					}
					rd.scratch = buf
					rd.offset += int64(len(buf))
					return buf, nil
				}
			case c == '\n':
				rd.line++
			}
		}
		buf = append(buf, chunk...)
		rd.r.Discard(len(chunk))
		if len(buf) > MaxItemBytes {
			return nil, fmt.Errorf("%w: item exceeds %d bytes", ErrItemTooLarge, MaxItemBytes)
		}
	}
}

// DecodeAll reads every item from b (array, object or NDJSON).
func DecodeAll(b []byte) ([]TraceItem, error) {
	rd := NewReader(bytes.NewReader(b))
	var out []TraceItem
	for {
		var t TraceItem
		_, err := rd.Next(&t)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, t)
	}
}
