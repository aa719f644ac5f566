package local

import "syscall"

// workerdSetParentDeathSignal makes the kernel SIGKILL workerd when the
// thread that started it exits; with Go that can be early only if the starting
// goroutine had locked its OS thread, which ours does not.
func workerdSetParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
