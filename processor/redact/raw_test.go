package redact

import (
	"strings"
	"testing"
)

func TestRaw(t *testing.T) {
	p, err := New(Rules{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		gone     []string // must not survive
		kept     []string // must survive
	}{
		{"truncated item", `{"outcome":"ok","event":{"request":{"url":"https://a.example/users/deadbeefcafef00d1234567890abcdef/pay?card=4111111111111111","headers":[{"name":"authorization","value":"Bearer tok-9f8e7d"},{"name":"x-cookie","value":"keep-me"}]}},"logs":[`,
			[]string{"deadbeefcafef00d1234567890abcdef", "4111111111111111", "tok-9f8e7d"}, []string{"keep-me", `"name":"authorization"`, "https://a.example/users/"}},
		{"headers as object", `{"Cookie": "sid=abc123", "x-api-key":"k-77", "host":"h.example"}`,
			[]string{"sid=abc123", "k-77"}, []string{"h.example"}},
		{"name value in separate objects", `[{"name":"authorization"},{"value":"not-a-secret"}]`,
			nil, []string{"not-a-secret"}},
		{"unterminated sensitive value", `{"authorization":"Basic dXNlcjpwYXNz`, []string{"dXNlcjpwYXNz"}, nil},
		{"bearer and card in free text", `oops Bearer abc.def-ghi and 4111 1111 1111 1111`, []string{"abc.def-ghi", "4111 1111 1111 1111"}, []string{"oops"}},
		{"escaped quotes", `{"message":"say \"authorization\"","token":"t\"x"}`, []string{`t\"x`}, []string{`say \"authorization\"`}},
		{"nothing to do", `{"outcome":"ok","cpuTime":"fast"}`, nil, []string{`{"outcome":"ok","cpuTime":"fast"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Raw(tc.in)
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("Raw(%q) = %q; still holds %q", tc.in, got, g)
				}
			}
			for _, k := range tc.kept {
				if !strings.Contains(got, k) {
					t.Errorf("Raw(%q) = %q; lost %q", tc.in, got, k)
				}
			}
			if again := p.Raw(got); again != got {
				t.Errorf("Raw not idempotent: %q then %q", got, again)
			}
		})
	}
}

func TestRawUnchangedDoesNotAllocate(t *testing.T) {
	p, _ := New(Rules{})
	s := `{"outcome":"ok","cpuTime":"fast","event":{"request":{"url":"https://a.example/health"}}}`
	if n := testing.AllocsPerRun(100, func() { _ = p.Raw(s) }); n != 0 {
		t.Fatalf("Raw allocated %v times on clean input", n)
	}
}

func FuzzRaw(f *testing.F) {
	f.Add(`{"name":"cookie","value":"x"}`)
	f.Add(`{"url":"https://a/0123456789abcdef0123456789abcdef"`)
	p, _ := New(Rules{})
	f.Fuzz(func(t *testing.T, s string) {
		got := p.Raw(s)
		if again := p.Raw(got); again != got {
			t.Fatalf("Raw not idempotent: %q -> %q -> %q", s, got, again)
		}
	})
}
