package flagx

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	f := func(in string, want []string) {
		t.Helper()
		if got := Split(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("Split(%q) = %q; want %q", in, got, want)
		}
	}
	f("", nil)
	f(" , ,", nil)
	f("a", []string{"a"})
	f("a, b,,c ", []string{"a", "b", "c"})
}

func TestList(t *testing.T) {
	l := List{"127.0.0.1:9092"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&l, "brokers", "seed brokers")
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "(default 127.0.0.1:9092)") {
		t.Fatalf("help does not show the default: %s", help.String())
	}
	if err := fs.Parse([]string{"-brokers", "a:1, b:2", "-brokers", "c:3"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(l, List{"c:3"}) {
		t.Fatalf("after two -brokers: %q; want the last", l)
	}
}
