//go:build unix

package local

import "syscall"

// workerdSysProcAttr puts workerd in its own process group so Close can
// signal everything it may have started, and (on Linux) has the kernel kill
// it if the test binary dies without calling Close.
func workerdSysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	workerdSetParentDeathSignal(a)
	return a
}

// workerdSignalGroup sends SIGTERM (or SIGKILL when kill) to the process
// group led by pid. Errors (the group is already gone) are ignored.
func workerdSignalGroup(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}
