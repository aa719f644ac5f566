package processor

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/taillight/taillight/schemas"
)

const fixturesPath = "/work/shared/fixtures/traceitems.jsonl"

// loadFixtures reads the runtime's captured TraceItems.
func loadFixtures(t testing.TB) []schemas.TraceItem {
	t.Helper()
	f, err := os.Open(fixturesPath)
	if err != nil {
		t.Skipf("fixtures not available (%v); they live in the shared fixtures directory", err)
	}
	defer f.Close()
	var out []schemas.TraceItem
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Name string `json:"name"`
			Raw  string `json:"raw"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		items, err := schemas.DecodeAll([]byte(line.Raw))
		if err != nil {
			t.Fatalf("fixture %s: %v", line.Name, err)
		}
		out = append(out, items...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
