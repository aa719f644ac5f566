package local

import "syscall"

// kafkaSysProcAttr puts a broker JVM in its own process group and has the
// kernel kill it when this process dies, so a test binary killed by its
// timeout leaves no broker behind.
func kafkaSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
