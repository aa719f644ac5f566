// Package flagx holds the flag values that taillight's commands and the
// RegisterFlags methods of its configs share, so that every list flag
// parses the same way.
package flagx

import "strings"

// Split splits a comma-separated value into its parts, spaces around them
// trimmed, empty parts dropped: "a, b,,c" gives [a b c], "" gives nil.
func Split(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// List is a comma-separated list flag (flag.Value): Set replaces the list
// with Split of its value, so a flag given twice keeps the last one, and
// the list given to fs.Var before parsing is the default -help shows.
//
//	fs.Var((*flagx.List)(&cfg.Brokers), "kafka.brokers", "comma-separated seed brokers")
type List []string

// String joins the list with commas.
func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set replaces the list with the parts of v.
func (l *List) Set(v string) error {
	*l = Split(v)
	return nil
}
