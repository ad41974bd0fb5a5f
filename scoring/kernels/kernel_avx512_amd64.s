//go:build amd64 && !purego

#include "textflag.h"

// The AVX-512 tile uses AVX-512F instructions only, on Z0–Z15 (ZMM16–31
// stay untouched, so VZEROUPPER at the end clears all the upper state it
// dirtied).

// One k step of the 6×32 tile: the B row's two halves at boff(DX) and
// boff(DX)(SI*1), the A column at aoff(Rn)(AX*4) for the six rows.
#define STEP32(boff, aoff) \
	VMOVUPS boff(DX), Z12 \
	VMOVUPS boff(DX)(SI*1), Z13 \
	VBROADCASTSS aoff(R8)(AX*4), Z14 \
	VFMADD231PS Z12, Z14, Z0 \
	VFMADD231PS Z13, Z14, Z1 \
	VBROADCASTSS aoff(R9)(AX*4), Z15 \
	VFMADD231PS Z12, Z15, Z2 \
	VFMADD231PS Z13, Z15, Z3 \
	VBROADCASTSS aoff(R10)(AX*4), Z14 \
	VFMADD231PS Z12, Z14, Z4 \
	VFMADD231PS Z13, Z14, Z5 \
	VBROADCASTSS aoff(R11)(AX*4), Z15 \
	VFMADD231PS Z12, Z15, Z6 \
	VFMADD231PS Z13, Z15, Z7 \
	VBROADCASTSS aoff(R12)(AX*4), Z14 \
	VFMADD231PS Z12, Z14, Z8 \
	VFMADD231PS Z13, Z14, Z9 \
	VBROADCASTSS aoff(R13)(AX*4), Z15 \
	VFMADD231PS Z12, Z15, Z10 \
	VFMADD231PS Z13, Z15, Z11

// func tile6x32AVX512(k int, a0, a1, a2, a3, a4, a5, b *float32, ldb int, c *float32, ldc int, bias *float32, relu int)
//
// c[i][0:32] = act(bias[0:32] + Σ_{p<k} a_i[p]·b'[p][0:32]) for the six
// rows i, where b'[p][0:16] = b[p*16 : p*16+16] and b'[p][16:32] =
// b[ldb+p*16 : ldb+p*16+16] (two packed panels of k rows of 16 floats, ldb
// floats apart), and c's rows are ldc floats apart; act is max(·, 0) if
// relu != 0 (a NaN stays NaN), the identity otherwise. Each product is one
// FMA, in order of p, whatever the tile's neighbours: the same operations
// as tile6x16AVX2 on each panel. Twelve 16-wide accumulators (Z0–Z11, two
// per row), two B loads (Z12, Z13) and six broadcasts (Z14, Z15) per k.
TEXT ·tile6x32AVX512(SB), NOSPLIT, $0-104
	MOVQ k+0(FP), BX
	MOVQ a0+8(FP), R8
	MOVQ a1+16(FP), R9
	MOVQ a2+24(FP), R10
	MOVQ a3+32(FP), R11
	MOVQ a4+40(FP), R12
	MOVQ a5+48(FP), R13
	MOVQ b+56(FP), DX
	MOVQ ldb+64(FP), SI
	SHLQ $2, SI

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11

	XORQ AX, AX
	MOVQ BX, CX
	ANDQ $-4, CX
	JZ   tail

loop4:
	STEP32(0, 0)
	STEP32(64, 4)
	STEP32(128, 8)
	STEP32(192, 12)
	ADDQ $256, DX
	ADDQ $4, AX
	CMPQ AX, CX
	JL   loop4

tail:
	CMPQ AX, BX
	JGE  epilogue

loop1:
	STEP32(0, 0)
	ADDQ $64, DX
	INCQ AX
	CMPQ AX, BX
	JL   loop1

epilogue:
	MOVQ bias+88(FP), CX
	VMOVUPS (CX), Z12
	VMOVUPS 64(CX), Z13
	VADDPS Z12, Z0, Z0
	VADDPS Z13, Z1, Z1
	VADDPS Z12, Z2, Z2
	VADDPS Z13, Z3, Z3
	VADDPS Z12, Z4, Z4
	VADDPS Z13, Z5, Z5
	VADDPS Z12, Z6, Z6
	VADDPS Z13, Z7, Z7
	VADDPS Z12, Z8, Z8
	VADDPS Z13, Z9, Z9
	VADDPS Z12, Z10, Z10
	VADDPS Z13, Z11, Z11

	MOVQ relu+96(FP), CX
	TESTQ CX, CX
	JZ   store
	// Intel's VMAXPS dst, 0, v returns its second source, v, when either
	// is a NaN: 0 > v ? 0 : v, as tile6x16Go.
	VPXORD Z14, Z14, Z14
	VMAXPS Z0, Z14, Z0
	VMAXPS Z1, Z14, Z1
	VMAXPS Z2, Z14, Z2
	VMAXPS Z3, Z14, Z3
	VMAXPS Z4, Z14, Z4
	VMAXPS Z5, Z14, Z5
	VMAXPS Z6, Z14, Z6
	VMAXPS Z7, Z14, Z7
	VMAXPS Z8, Z14, Z8
	VMAXPS Z9, Z14, Z9
	VMAXPS Z10, Z14, Z10
	VMAXPS Z11, Z14, Z11

store:
	MOVQ c+72(FP), DI
	MOVQ ldc+80(FP), SI
	SHLQ $2, SI
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ SI, DI
	VMOVUPS Z2, (DI)
	VMOVUPS Z3, 64(DI)
	ADDQ SI, DI
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, 64(DI)
	ADDQ SI, DI
	VMOVUPS Z6, (DI)
	VMOVUPS Z7, 64(DI)
	ADDQ SI, DI
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, 64(DI)
	ADDQ SI, DI
	VMOVUPS Z10, (DI)
	VMOVUPS Z11, 64(DI)
	VZEROUPPER
	RET
