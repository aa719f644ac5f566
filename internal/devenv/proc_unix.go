//go:build unix

package devenv

import "syscall"

// ProcAttr puts a server in its own process group, so stopping it reaches
// everything it may start, and (on Linux) has the kernel kill it if this
// process dies first, so a test binary killed by its timeout leaves no
// server behind.
func ProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	setParentDeathSignal(a)
	return a
}

// SignalGroup sends SIGTERM (or SIGKILL when kill) to the process group led
// by pid. Errors (the group is already gone) are ignored.
func SignalGroup(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}
