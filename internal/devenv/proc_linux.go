package devenv

import "syscall"

// setParentDeathSignal makes the kernel SIGKILL the server when the thread
// that started it exits; with Go that is early only if the starting
// goroutine had locked its OS thread, which ours do not.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
