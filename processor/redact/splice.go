package redact

import "strings"

// splice builds an edited copy of s. It allocates on the first edit only,
// so text without a match costs no allocation.
type splice struct {
	s    string
	b    strings.Builder
	last int // s[:last] is already in b
}

// replace copies s up to from, then v, and resumes the copy at to.
func (sp *splice) replace(from, to int, v string) {
	if sp.b.Cap() == 0 {
		sp.b.Grow(len(sp.s))
	}
	sp.b.WriteString(sp.s[sp.last:from])
	sp.b.WriteString(v)
	sp.last = to
}

// edited reports whether replace was called.
func (sp *splice) edited() bool { return sp.b.Cap() != 0 }

// String returns the edited copy, or s itself when nothing was replaced.
func (sp *splice) String() string {
	if !sp.edited() {
		return sp.s
	}
	sp.b.WriteString(sp.s[sp.last:])
	return sp.b.String()
}

// fixedPoint applies rules to s until none changes it (at most four
// rounds), so that a rule's REDACTED completing another's match is caught.
func fixedPoint(s string, rules []textRule) string {
	for range 4 {
		changed := false
		for _, r := range rules {
			var c bool
			if s, c = r(s); c {
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return s
}
