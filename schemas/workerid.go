package schemas

import "fmt"

// MaxWorkerIDLen is the longest workerId accepted, in bytes.
const MaxWorkerIDLen = 128

// ValidateWorkerID checks a Dynamic Worker id (TraceItem.WorkerID, or the
// one ingest applies to every item of a POST): 1 to MaxWorkerIDLen bytes of
// A-Z a-z 0-9 and - _ . : / @ + =. The set keeps an id safe to print, to put
// in a URL query and to use as a filter without escaping, and the bound keeps
// rollup keys small. The error names the first offending byte.
func ValidateWorkerID(id string) error {
	if id == "" {
		return fmt.Errorf("empty (omit it for an item without a worker)")
	}
	if len(id) > MaxWorkerIDLen {
		return fmt.Errorf("%d bytes, longer than %d", len(id), MaxWorkerIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !workerIDByte(c) {
			if c >= 0x20 && c < 0x7f {
				return fmt.Errorf("byte %d is %q: allowed are A-Z a-z 0-9 and - _ . : / @ + =", i, c)
			}
			return fmt.Errorf("byte %d is 0x%02x: allowed are A-Z a-z 0-9 and - _ . : / @ + =", i, c)
		}
	}
	return nil
}

func workerIDByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', ':', '/', '@', '+', '=':
		return true
	}
	return false
}
