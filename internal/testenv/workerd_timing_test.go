package testenv

import "testing"

// BenchmarkStartWorkerd measures StartWorkerd (config, spawn, listening)
// plus Close (SIGTERM, wait, cleanup) with a producer and a Tail Worker.
func BenchmarkStartWorkerd(b *testing.B) {
	if testing.Short() {
		b.Skip("skipping workerd benchmark in -short mode")
	}
	bin, err := FindWorkerd()
	if err != nil {
		b.Skipf("skipping: %v", err)
	}
	cfg := WorkerdConfig{
		Binary:   bin,
		Producer: producerOK,
		Tail:     WorkerdWorker{Modules: []WorkerdModule{{Name: "tail.js", Source: `export default { async tail() {} };`}}},
	}
	for b.Loop() {
		wd, err := StartWorkerd(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := wd.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
