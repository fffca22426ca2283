//go:build !linux

package e2e

import "syscall"

func nodeSysProcAttr() *syscall.SysProcAttr { return nil }
