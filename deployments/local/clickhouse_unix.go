//go:build unix

package local

import "syscall"

// clickHouseSysProcAttr puts the server in its own process group, so Stop,
// Kill and Close reach everything it may start, and (on Linux) has the
// kernel kill it if the parent process dies without calling Close.
func clickHouseSysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	clickHouseSetParentDeathSignal(a)
	return a
}

// clickHouseSignalGroup sends SIGTERM (or SIGKILL when kill) to the process
// group led by pid. Errors (the group is already gone) are ignored.
func clickHouseSignalGroup(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}
