//go:build !linux

package launcher

import (
	"io/fs"
	"runtime"
)

func checkKernel() Check {
	return Check{Name: "os", Status: CheckFail, Detail: runtime.GOOS + ": mcpbox needs Linux (containerd, runc, seccomp)", Fix: "run mcpbox on a Linux host or VM"}
}

func fileOwner(fs.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

func checkSeccomp(DoctorOptions) Check {
	return Check{Name: "seccomp", Status: CheckSkip, Detail: "skip: not Linux"}
}

func checkCgroups(DoctorOptions) Check {
	return Check{Name: "cgroups", Status: CheckSkip, Detail: "skip: not Linux"}
}

func checkNftables() Check {
	return Check{Name: "nftables", Status: CheckSkip, Detail: "skip: not Linux"}
}
