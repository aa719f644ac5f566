package integration

import (
	"os"
	"testing"
)

// TestMain tears the shared backend down after every test of the package ran.
func TestMain(m *testing.M) { os.Exit(Main(m)) }
