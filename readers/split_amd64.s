//go:build amd64 && !purego

#include "textflag.h"

// func delimEndsAVX2(p *byte, n int, d byte, ends *int32, base int) (k int, high uint32)
//
// For n a multiple of 32: writes the index of every byte of p[:n] equal to
// d, plus base, to ends (in order; room for n), returns how many, and the bytes' high
// bits ORed together (a VPMOVMSKB of the OR of all 32-byte blocks: not zero
// if any byte is not ASCII).
TEXT ·delimEndsAVX2(SB), NOSPLIT, $0-52
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVBLZX d+16(FP), AX
	MOVQ ends+24(FP), DI
	MOVQ base+32(FP), R10
	MOVL AX, X0
	VPBROADCASTB X0, Y0
	VPXOR Y2, Y2, Y2
	XORQ BX, BX // offset of the block
	XORQ R8, R8 // ends written

block:
	CMPQ BX, CX
	JAE  done
	VMOVDQU (SI)(BX*1), Y1
	VPOR    Y1, Y2, Y2
	VPCMPEQB Y0, Y1, Y3
	VPMOVMSKB Y3, DX

bits:
	TESTL  DX, DX
	JZ     next
	TZCNTL DX, R9
	ADDL   BX, R9
	ADDL   R10, R9
	MOVL   R9, (DI)(R8*4)
	INCQ   R8
	BLSRL  DX, DX
	JMP    bits

next:
	ADDQ $32, BX
	JMP  block

done:
	VPMOVMSKB Y2, DX
	VZEROUPPER
	MOVQ R8, k+40(FP)
	MOVL DX, high+48(FP)
	RET
