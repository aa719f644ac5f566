//go:build unix && !linux

package local

import "syscall"

func clickHouseSetParentDeathSignal(*syscall.SysProcAttr) {}
