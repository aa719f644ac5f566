//go:build unix && !linux

package local

import "syscall"

// workerdSetParentDeathSignal: only Linux has a parent-death signal; elsewhere
// a test binary killed before Close leaves workerd running.
func workerdSetParentDeathSignal(*syscall.SysProcAttr) {}
