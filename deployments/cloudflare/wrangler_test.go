package cloudflare

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestWranglerConfig checks that wrangler.jsonc deploys tail-worker.js with
// every env variable the Worker reads, and no token in plain vars.
func TestWranglerConfig(t *testing.T) {
	b, err := os.ReadFile("wrangler.jsonc")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Name              string            `json:"name"`
		Main              string            `json:"main"`
		CompatibilityDate string            `json:"compatibility_date"`
		Vars              map[string]string `json:"vars"`
		TailConsumers     []any             `json:"tail_consumers"`
	}
	if err := json.Unmarshal(stripJSONC(b), &cfg); err != nil {
		t.Fatalf("wrangler.jsonc: %v", err)
	}
	if cfg.Main != "tail-worker.js" || cfg.Name == "" || cfg.CompatibilityDate == "" {
		t.Fatalf("wrangler.jsonc: name %q main %q compatibility_date %q", cfg.Name, cfg.Main, cfg.CompatibilityDate)
	}
	if len(cfg.TailConsumers) > 0 {
		t.Fatal("wrangler.jsonc: the Tail Worker must not tail itself")
	}
	if _, ok := cfg.Vars["INGEST_TOKEN"]; ok {
		t.Fatal("wrangler.jsonc: INGEST_TOKEN belongs in a secret, not in vars")
	}
	var src []byte
	for _, f := range []string{"tail-worker.js", "taillight-forward.js"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`env\.([A-Z_]+)`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	for name := range read {
		if _, ok := cfg.Vars[name]; !ok && name != "INGEST_TOKEN" {
			t.Errorf("tail-worker.js reads env.%s, which wrangler.jsonc does not set", name)
		}
	}
	for name := range cfg.Vars {
		if !read[name] {
			t.Errorf("wrangler.jsonc sets %s, which tail-worker.js does not read", name)
		}
	}
}

// stripJSONC removes // and /* */ comments outside strings.
func stripJSONC(b []byte) []byte {
	var out []byte
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inStr:
			out = append(out, c)
			if c == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
			out = append(out, c)
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			out = append(out, '\n')
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := strings.Index(string(b[i+2:]), "*/")
			if end < 0 {
				return out
			}
			i += end + 3
		default:
			out = append(out, c)
		}
	}
	return out
}
