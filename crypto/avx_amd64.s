//go:build amd64 && !purego

#include "textflag.h"

// func vzeroupper()
TEXT ·vzeroupper(SB), NOSPLIT|NOFRAME, $0-0
	VZEROUPPER
	RET

// func osSupportsAVX() bool
//
// CPUID.1:ECX has OSXSAVE (bit 27) and AVX (bit 28), and XCR0 has the XMM
// and YMM state enabled (bits 1 and 2): the test Go's internal/cpu makes.
TEXT ·osSupportsAVX(SB), NOSPLIT, $0-1
	MOVL $1, AX
	XORL CX, CX
	CPUID
	ANDL $0x18000000, CX
	CMPL CX, $0x18000000
	JNE  no
	XORL CX, CX
	XGETBV
	ANDL $6, AX
	CMPL AX, $6
	JNE  no
	MOVB $1, ret+0(FP)
	RET

no:
	MOVB $0, ret+0(FP)
	RET
