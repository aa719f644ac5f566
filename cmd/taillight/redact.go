package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

func init() {
	register(&command{
		name:    "redact",
		summary: "redact TraceItems from stdin (JSON array or NDJSON) to NDJSON on stdout",
		run:     runRedact,
	})
}

const redactHelp = `Usage: taillight redact [flags] < items.json > redacted.ndjson

Reads TraceItems on stdin, as a JSON array exactly as a Tail Worker sends it or as
NDJSON, and writes them redacted to stdout, one JSON object per line, in input order.
The default policy is the Workers runtime's own (request URL and header values);
the flags below add opt-in rules. Malformed input stops the run with exit status 2
and a message naming the item and its line or byte offset; the items before it are
written, and never a partial line.

Flags:
`

func runRedact(ctx context.Context, args []string, s stdio) int {
	fs := newFlagSet("redact", s)
	var rules redact.Rules
	all := fs.Bool("rules", false, "turn on every extra rule: emails, IP addresses, bearer tokens, JWTs and card numbers in\nlog messages, exception messages and stacks, and query parameters by name (the\n-rules.query-params list, else "+strings.Join(redact.DefaultQueryParams, ",")+")")
	rules.RegisterFlags(fs, "rules.")
	if code, ok := parseCommand(fs, args, redactHelp); !ok {
		return code
	}
	if *all {
		rules.AllText()
		if !isSet(fs, "rules.query-params") {
			rules.QueryParams = redact.DefaultQueryParams
		}
	}
	p, err := redact.New(rules)
	if err != nil {
		fmt.Fprintf(s.err, "taillight redact: %v\n", err)
		return exitUsage
	}
	return redactStream(ctx, p, s)
}

// redactStream copies items from s.in to s.out through p. Each item is
// encoded into its own buffer and written as a whole line, so output stops at
// a line boundary whatever goes wrong.
func redactStream(ctx context.Context, p *redact.Policy, s stdio) int {
	rd := schemas.NewReader(s.in)
	w := bufio.NewWriterSize(s.out, 64<<10)
	var (
		it   schemas.TraceItem
		line []byte
		n    int
	)
	fail := func(code int, format string, a ...any) int {
		if err := w.Flush(); err != nil {
			fmt.Fprintf(s.err, "taillight redact: write stdout: %v\n", err)
			return exitError
		}
		fmt.Fprintf(s.err, "taillight redact: "+format+"\n", a...)
		return code
	}
	for {
		if err := ctx.Err(); err != nil {
			return fail(exitError, "stopped after %d items: %v", n, err)
		}
		_, err := rd.Next(&it)
		if err == io.EOF {
			break
		}
		if err != nil {
			var ie *schemas.ItemError
			if errors.As(err, &ie) {
				return fail(exitUsage, "malformed input: %v (%d items written before it)", err, n)
			}
			return fail(exitError, "read stdin: %v", err)
		}
		p.Item(&it)
		if line, err = schemas.Marshal(line[:0], &it); err != nil {
			return fail(exitError, "item %d: %v", n, err)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			fmt.Fprintf(s.err, "taillight redact: write stdout: %v\n", err)
			return exitError
		}
		n++
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(s.err, "taillight redact: write stdout: %v\n", err)
		return exitError
	}
	return exitOK
}
