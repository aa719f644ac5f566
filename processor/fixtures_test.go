package processor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/taillight/taillight/schemas"
)

// fixtures are the runtime's captured TraceItems (shared/fixtures
// traceitems.jsonl), as the schemas package keeps them in its golden files.
const fixtures = "../schemas/testdata/*.golden.json"

// loadFixtures reads the runtime's captured TraceItems.
func loadFixtures(t testing.TB) []schemas.TraceItem {
	t.Helper()
	files, err := filepath.Glob(fixtures)
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures at %s (%v)", fixtures, err)
	}
	var out []schemas.TraceItem
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		items, err := schemas.DecodeAll(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, items...)
	}
	if len(out) < len(files) {
		t.Fatalf("%d items from %d fixture files", len(out), len(files))
	}
	return out
}
