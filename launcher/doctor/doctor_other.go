//go:build !linux

package doctor

import (
	"io/fs"
	"runtime"
)

func checkKernel() Result {
	return Result{Name: "os", Status: Fail, Detail: runtime.GOOS + ": mcpbox needs Linux (containerd, runc, seccomp)", Fix: "run mcpbox on a Linux host or VM"}
}

func fileOwner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

func checkSeccomp(Options) Result {
	return Result{Name: "seccomp", Status: Skip, Detail: "skip: not Linux"}
}

func checkCgroups(Options) Result {
	return Result{Name: "cgroups", Status: Skip, Detail: "skip: not Linux"}
}

func checkNftables() Result {
	return Result{Name: "nftables", Status: Skip, Detail: "skip: not Linux"}
}
