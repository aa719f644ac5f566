//go:build unix && !linux

package local

import "syscall"

// kafkaSysProcAttr puts a broker JVM in its own process group. Without Linux's
// Pdeathsig a broker outlives a test binary that is killed before Close.
func kafkaSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
