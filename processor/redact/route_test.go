package redact

import (
	"strings"
	"testing"
)

func TestRouteHeuristic(t *testing.T) {
	r, err := NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	f := func(in, wantHost, wantRoute string) {
		t.Helper()
		host, route := r.Route(in)
		if host != wantHost || route != wantRoute {
			t.Fatalf("Route(%q) = %q, %q; want %q, %q", in, host, route, wantHost, wantRoute)
		}
		// A template is a fixed point: routing it again changes nothing.
		// "//x" would read as a scheme-relative URL: only other routes are
		// fixed points.
		if _, again := r.Route(route); again != route && !strings.HasPrefix(route, "//") {
			t.Fatalf("Route(%q) = %q: not a fixed point", route, again)
		}
	}
	f("https://api.example.com", "api.example.com", "/")
	f("https://api.example.com/", "api.example.com", "/")
	f("https://api.example.com/users", "api.example.com", "/users")
	f("https://api.example.com/users/12345/orders/7?expand=1#top", "api.example.com", "/users/:id/orders/:id")
	f("http://user:pw@h:8080/v1/items/0", "h:8080", "/v1/items/:id")
	f("https://h/u/123e4567-e89b-12d3-a456-426614174000", "h", "/u/:id")
	f("https://h/blob/9f86d081884c7d65", "h", "/blob/:id")
	f("https://h/blob/deadbeef", "h", "/blob/deadbeef") // a word, no digit
	f("https://h/v/dQw4w9WgXcQ_abcdef12", "h", "/v/:id")
	f("https://h/s/REDACTED/x", "h", "/s/:id/x")
	f("https://h/img/123.png", "h", "/img/:id.png")
	f("https://h/img/logo.png", "h", "/img/logo.png")
	f("https://h/a/"+strings.Repeat("x", 65), "h", "/a/:id")
	f("https://h/api/v2/health/", "h", "/api/v2/health/")
	f("https://h/a//1", "h", "/a//:id")
	f("/relative/42", "", "/relative/:id")
	f("//h/42", "h", "/:id")
	f("h/42", "h", "/:id")
	f("https://h/?q=1", "h", "/")
	f("https://h/"+strings.Repeat("a/", 20), "h", "/"+strings.Repeat("a/", 16)+"*")
}

func TestRoutePatterns(t *testing.T) {
	r, err := NewRouter([]string{"/users/:id/orders/:oid", "/api/*", "/static/logo.png", "/"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(in, want string) {
		t.Helper()
		if _, got := r.Route(in); got != want {
			t.Fatalf("Route(%q) = %q; want %q", in, got, want)
		}
	}
	f("https://h/users/alice/orders/xyz", "/users/:id/orders/:oid")
	f("https://h/users/alice/orders/xyz/", "/users/:id/orders/:oid")
	f("https://h/users/alice/orders", "/users/alice/orders") // no pattern: heuristic
	f("https://h/users/alice/orders/xyz/items", "/users/alice/orders/xyz/items")
	f("https://h/users//orders/x", "/users//orders/x")
	f("https://h/api", "/api/*")
	f("https://h/api/", "/api/*")
	f("https://h/api/any/depth/123", "/api/*")
	f("https://h/apis/1", "/apis/:id")
	f("https://h/static/logo.png?v=3", "/static/logo.png")
	f("https://h/", "/")
	f("https://h", "/")
	f("https://h/x", "/x")
}

func TestRoutePatternErrors(t *testing.T) {
	for _, p := range []string{"", "users", "/a/*/b", "/a/b*", "/a?x", "/a#f", "/a//b", "/a/:"} {
		if _, err := NewRouter([]string{p}); err == nil {
			t.Errorf("NewRouter(%q) = nil error", p)
		}
	}
}

func TestRouteBoundedCardinality(t *testing.T) {
	r, _ := NewRouter(nil)
	seen := map[string]bool{}
	for i := range 2000 {
		u := "https://h/users/" + itoa(i*7919) + "/files/" + hexID(i) + "/" + itoa(i) + ".json?x=" + itoa(i)
		_, route := r.Route(u)
		seen[route] = true
	}
	if len(seen) != 1 {
		t.Fatalf("2000 URLs gave %d routes, e.g. %v", len(seen), seen)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func hexID(i int) string {
	const h = "0123456789abcdef"
	b := make([]byte, 16)
	for k := range b {
		b[k] = h[(i*31+k*7+1)%16]
	}
	b[0] = '1'
	return string(b)
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"https://h/users/42?x=1", "/a//b/", "h/123.png", "//h", "https://u@h:1/REDACTED/:id/x.tar.gz", "https://h/r/https://x/y"} {
		f.Add(s)
	}
	r, err := NewRouter([]string{"/api/*", "/u/:id/x"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, route := r.Route(in)
		if !strings.HasPrefix(route, "/") || strings.ContainsAny(route, "?#") {
			t.Fatalf("Route(%q) = %q: not a path", in, route)
		}
		if strings.ContainsAny(host, "/?#@") {
			t.Fatalf("Route(%q) host = %q", in, host)
		}
		// "//x" would read as a scheme-relative URL: only other routes are
		// fixed points.
		if _, again := r.Route(route); again != route && !strings.HasPrefix(route, "//") {
			t.Fatalf("Route(%q) = %q, then %q: not a fixed point", in, route, again)
		}
	})
}
