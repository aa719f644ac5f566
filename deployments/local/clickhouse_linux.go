package local

import "syscall"

// clickHouseSetParentDeathSignal makes the kernel SIGKILL the server when the
// thread that started it exits; with Go that is early only if the starting
// goroutine had locked its OS thread, which ours does not.
func clickHouseSetParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
