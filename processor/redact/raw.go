package redact

// rawRules are the text rules Raw always applies, whatever the Policy's
// Rules: in text that failed to decode nothing says where a token may be.
var rawRules = []textRule{jwtRule, bearerRule, cardRule}

// Raw redacts text that could not be decoded as a TraceItem (a poison
// record's value, or a decode error quoting it) as well as text allows,
// since the item's structure is unknown. It scans the JSON-like string
// literals of s ("…", a trailing unterminated one included) and replaces:
//
//   - the value of a key that SensitiveHeader names ({"authorization":"…"});
//   - the "value" after a "name" that SensitiveHeader names ({"name":
//     "cookie","value":"…"}), within the same object as far as a scan can
//     tell;
//   - the value of a "url" key by p.URL (IDs, cards, query parameters);
//
// then runs the policy's text rules and, always, the bearer-token, JWT and
// card-number rules over the whole text, and repeats until a pass changes
// nothing (at most four), so Raw of its result is the result. The result is not byte-identical
// to the input and may no longer parse the same way; it returns s itself
// when nothing matched.
func (p *Policy) Raw(s string) string {
	// A text rule can change a "url" value so that the URL rules match it
	// next time (digits redacted inside it, say): repeat to a fixpoint, so
	// Raw of its own output changes nothing.
	for range 4 {
		r := p.rawOnce(s)
		if r == s {
			break
		}
		s = r
	}
	return s
}

// rawOnce is one pass of Raw: the key-aware rules, then the text rules.
func (p *Policy) rawOnce(s string) string {
	sp := splice{s: s}
	var key string         // the key the next string literal is the value of
	sensitiveName := false // the object's "name" named a sensitive header
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '}':
			key, sensitiveName = "", false
			continue
		case '"':
		default:
			continue
		}
		// A string literal s[i+1:j], j at its closing quote or len(s).
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		j = min(j, len(s))
		lit := s[i+1 : j]
		k := j + 1
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
			k++
		}
		if k < len(s) && s[k] == ':' {
			key = lit // an object key: what follows is its value
			i = j
			continue
		}
		switch {
		case key == "name":
			sensitiveName = SensitiveHeader(lit)
		case key == "value" && sensitiveName, key != "" && SensitiveHeader(key):
			if lit != Redacted {
				sp.replace(i+1, j, Redacted)
			}
		case key == "url":
			if u := p.URL(lit); u != lit {
				sp.replace(i+1, j, u)
			}
		}
		key = ""
		i = j
	}
	return fixedPoint(p.Text(sp.String()), rawRules)
}
