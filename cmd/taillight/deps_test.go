package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryDependencies keeps test infrastructure and installers out of the
// taillight binary: its packages must not include container or browser
// drivers, YAML, or the test environments.
func TestBinaryDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"testcontainers", "docker", "chromedp", "yaml", "/internal/testenv", "/processor/proctest", "/integration"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.Contains(pkg, f) {
				t.Errorf("the taillight binary depends on %s (matches %q)", pkg, f)
			}
		}
	}
}
