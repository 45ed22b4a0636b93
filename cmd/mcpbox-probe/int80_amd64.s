//go:build linux

#include "textflag.h"

// func int80getpid() int64
//
// Calls the i386 getpid (20) through the 32-bit system call gate. A sandbox
// must refuse the compat table: seccomp kills the caller, or the kernel lacks
// IA32 emulation and the instruction faults (SIGSEGV; see childInt80).
TEXT ·int80getpid(SB),NOSPLIT,$0-8
	MOVQ	$20, AX
	INT	$0x80
	MOVQ	AX, ret+0(FP)
	RET

// func forkPause() int64
//
// fork(2) through clone(SIGCHLD). The child blocks every signal and loops in
// pause(2) without ever returning to Go code, so it needs nothing of the Go
// runtime (which it does not have: only this thread was copied). The parent
// gets the child's pid, or -errno.
TEXT ·forkPause(SB),NOSPLIT,$16-8
	MOVQ	$56, AX // clone
	MOVQ	$17, DI // SIGCHLD
	XORQ	SI, SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	MOVQ	AX, ret+0(FP)
	RET
child:
	MOVQ	$-1, 0(SP)
	MOVQ	$14, AX // rt_sigprocmask
	MOVQ	$2, DI  // SIG_SETMASK
	LEAQ	0(SP), SI
	XORQ	DX, DX
	MOVQ	$8, R10
	SYSCALL
loop:
	MOVQ	$34, AX // pause
	SYSCALL
	JMP	loop
