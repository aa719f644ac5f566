//go:build unix && !linux

package devenv

import "syscall"

// setParentDeathSignal: only Linux has a parent-death signal; elsewhere a
// process killed before Close leaves its servers running.
func setParentDeathSignal(*syscall.SysProcAttr) {}
