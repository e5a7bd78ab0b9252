//go:build fault && !linux

package faults_test

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
