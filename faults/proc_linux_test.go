//go:build fault && linux

package faults_test

import "syscall"

// procAttr makes a child die with the test process, so that a test killed
// by its timeout leaves no server holding the cluster's fixed ports.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
