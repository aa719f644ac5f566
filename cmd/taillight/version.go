package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at link time (-ldflags "-X main.version=…"); otherwise the
// module build info is used.
var version = ""

func init() {
	register(&command{name: "version", summary: "print the version", run: runVersion})
}

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return v
}

func runVersion(_ context.Context, args []string, s stdio) int {
	fs := newFlagSet("version", s)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fmt.Fprintln(s.out, "taillight", versionString())
	return exitOK
}
