package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/flags.md from the commands' flag sets (make docs)")

const flagsDocPath = "../../docs/flags.md"

// flagsRecorder is the output of a command asked for its help: it keeps the
// help text and the flag sets the command builds.
type flagsRecorder struct {
	bytes.Buffer
	sets []*flag.FlagSet
}

func (r *flagsRecorder) recordFlagSet(fs *flag.FlagSet) { r.sets = append(r.sets, fs) }

// flagsDoc renders docs/flags.md: the command list of `taillight help`, then
// for every listed command its help text and a table of its flags, read
// from the flag set the command itself builds.
func flagsDoc(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Command and flag reference\n\n")
	b.WriteString("<!-- Generated from the commands' flag sets by `make docs`; do not edit.\n")
	b.WriteString("     TestFlagsDoc (cmd/taillight) fails when this file is out of date. -->\n\n")
	b.WriteString("Every flag is also an environment variable: `TAILLIGHT_` and the flag's name\n")
	b.WriteString("in upper case, with `.` and `-` as `_` (`-kafka.brokers` is\n")
	b.WriteString("`TAILLIGHT_KAFKA_BROKERS`). The command line wins over the environment.\n")
	b.WriteString("Exit status: 0 success, 1 runtime failure, 2 bad flags or bad input.\n\n")

	var list bytes.Buffer
	usage(&list)
	b.WriteString("```text\n$ taillight help\n")
	b.Write(list.Bytes())
	b.WriteString("```\n")

	for _, n := range listedCommands() {
		rec := &flagsRecorder{}
		code := commands[n].exec(context.Background(), []string{"-h"}, stdio{strings.NewReader(""), rec, rec})
		if code != exitOK {
			t.Fatalf("taillight %s -h = %d; want %d:\n%s", n, code, exitOK, rec.String())
		}
		if len(rec.sets) != 1 {
			t.Fatalf("taillight %s built %d flag sets; want 1", n, len(rec.sets))
		}
		fs := rec.sets[0]
		var defaults bytes.Buffer
		fs.SetOutput(&defaults)
		printDefaults(fs)
		text, _, _ := strings.Cut(rec.String(), defaults.String())
		text = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), "Flags:"))

		fmt.Fprintf(&b, "\n## `taillight %s`\n\n", n)
		if text != "" {
			fmt.Fprintf(&b, "```text\n%s\n```\n\n", text)
		}
		var rows []string
		fs.VisitAll(func(f *flag.Flag) {
			if _, alias := f.Value.(aliasValue); alias {
				return // a deprecated name, not shown by help either
			}
			typ, use := flag.UnquoteUsage(f)
			def := ""
			if f.DefValue != "" {
				def = "`" + f.DefValue + "`"
			}
			if typ != "" {
				typ = " " + typ
			}
			rows = append(rows, fmt.Sprintf("| `-%s%s` | %s | %s |", f.Name, typ, def, mdCell(use)))
		})
		if len(rows) == 0 {
			b.WriteString("No flags.\n")
			continue
		}
		b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
		b.WriteString(strings.Join(rows, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// mdCell makes text safe inside a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("\n", " ", "|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`).Replace(s)
}

func TestFlagsDoc(t *testing.T) {
	got := flagsDoc(t)
	if *updateDocs {
		if err := os.WriteFile(flagsDocPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(flagsDocPath)
	if err != nil {
		t.Fatalf("read the flag reference: %v (run `make docs` to generate it)", err)
	}
	if string(want) != got {
		t.Fatalf("docs/flags.md does not match the commands' flags; run `make docs` and commit the result.\n%s", lineDiff(string(want), got))
	}
}

// lineDiff lists the lines only in the file (-) and only in the generated
// text (+), at most 40 of them.
func lineDiff(file, gen string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	inFile, inGen := count(file), count(gen)
	var out []string
	for _, l := range strings.Split(file, "\n") {
		if inGen[l] > 0 {
			inGen[l]--
		} else {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(gen, "\n") {
		if inFile[l] > 0 {
			inFile[l]--
		} else {
			out = append(out, "+ "+l)
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("… and %d more lines", len(out)-40))
	}
	return strings.Join(out, "\n")
}

func TestLineDiff(t *testing.T) {
	f := func(file, gen, want string) {
		t.Helper()
		if got := lineDiff(file, gen); got != want {
			t.Fatalf("lineDiff(%q, %q) = %q; want %q", file, gen, got, want)
		}
	}
	f("a\nb\n", "a\nb\n", "")
	f("a\nb\n", "a\nc\n", "- b\n+ c")
	f("| `-x int` | `1` |\n", "| `-x int` | `2` |\n", "- | `-x int` | `1` |\n+ | `-x int` | `2` |")
}
