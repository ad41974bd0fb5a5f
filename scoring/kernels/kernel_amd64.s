//go:build amd64 && !purego

#include "textflag.h"

// One k step of the 6×16 tile: B row at off(DX), A column at
// aoff(Rn)(AX*4) for the six rows.
#define STEP(boff, aoff) \
	VMOVUPS boff(DX), Y12 \
	VMOVUPS boff+32(DX), Y13 \
	VBROADCASTSS aoff(R8)(AX*4), Y14 \
	VFMADD231PS Y12, Y14, Y0 \
	VFMADD231PS Y13, Y14, Y1 \
	VBROADCASTSS aoff(R9)(AX*4), Y15 \
	VFMADD231PS Y12, Y15, Y2 \
	VFMADD231PS Y13, Y15, Y3 \
	VBROADCASTSS aoff(R10)(AX*4), Y14 \
	VFMADD231PS Y12, Y14, Y4 \
	VFMADD231PS Y13, Y14, Y5 \
	VBROADCASTSS aoff(R11)(AX*4), Y15 \
	VFMADD231PS Y12, Y15, Y6 \
	VFMADD231PS Y13, Y15, Y7 \
	VBROADCASTSS aoff(R12)(AX*4), Y14 \
	VFMADD231PS Y12, Y14, Y8 \
	VFMADD231PS Y13, Y14, Y9 \
	VBROADCASTSS aoff(R13)(AX*4), Y15 \
	VFMADD231PS Y12, Y15, Y10 \
	VFMADD231PS Y13, Y15, Y11

// func tile6x16AVX2(k int, a0, a1, a2, a3, a4, a5, b, c *float32, ldc int, bias *float32, relu int)
//
// c[i][0:16] = act(bias[0:16] + Σ_{p<k} a_i[p]·b[p][0:16]) for the six rows
// i, where b is a packed panel (k rows of 16 floats) and c's rows are ldc
// floats apart; act is max(·, 0) if relu != 0 (a NaN stays NaN), the
// identity otherwise.
// Each product is one FMA, in order of p, whatever the tile's neighbours.
TEXT ·tile6x16AVX2(SB), NOSPLIT, $0-96
	MOVQ k+0(FP), BX
	MOVQ a0+8(FP), R8
	MOVQ a1+16(FP), R9
	MOVQ a2+24(FP), R10
	MOVQ a3+32(FP), R11
	MOVQ a4+40(FP), R12
	MOVQ a5+48(FP), R13
	MOVQ b+56(FP), DX

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	XORQ AX, AX
	MOVQ BX, CX
	ANDQ $-4, CX
	JZ   tail

loop4:
	STEP(0, 0)
	STEP(64, 4)
	STEP(128, 8)
	STEP(192, 12)
	ADDQ $256, DX
	ADDQ $4, AX
	CMPQ AX, CX
	JL   loop4

tail:
	CMPQ AX, BX
	JGE  epilogue

loop1:
	STEP(0, 0)
	ADDQ $64, DX
	INCQ AX
	CMPQ AX, BX
	JL   loop1

epilogue:
	MOVQ bias+80(FP), CX
	VMOVUPS (CX), Y12
	VMOVUPS 32(CX), Y13
	VADDPS Y12, Y0, Y0
	VADDPS Y13, Y1, Y1
	VADDPS Y12, Y2, Y2
	VADDPS Y13, Y3, Y3
	VADDPS Y12, Y4, Y4
	VADDPS Y13, Y5, Y5
	VADDPS Y12, Y6, Y6
	VADDPS Y13, Y7, Y7
	VADDPS Y12, Y8, Y8
	VADDPS Y13, Y9, Y9
	VADDPS Y12, Y10, Y10
	VADDPS Y13, Y11, Y11

	MOVQ relu+88(FP), CX
	TESTQ CX, CX
	JZ   store
	// Intel's VMAXPS dst, 0, v returns its second source, v, when either
	// is a NaN: 0 > v ? 0 : v, as tile6x16Go.
	VXORPS Y14, Y14, Y14
	VMAXPS Y0, Y14, Y0
	VMAXPS Y1, Y14, Y1
	VMAXPS Y2, Y14, Y2
	VMAXPS Y3, Y14, Y3
	VMAXPS Y4, Y14, Y4
	VMAXPS Y5, Y14, Y5
	VMAXPS Y6, Y14, Y6
	VMAXPS Y7, Y14, Y7
	VMAXPS Y8, Y14, Y8
	VMAXPS Y9, Y14, Y9
	VMAXPS Y10, Y14, Y10
	VMAXPS Y11, Y14, Y11

store:
	MOVQ c+64(FP), DI
	MOVQ ldc+72(FP), SI
	SHLQ $2, SI
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ SI, DI
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ SI, DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ SI, DI
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	ADDQ SI, DI
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 32(DI)
	ADDQ SI, DI
	VMOVUPS Y10, (DI)
	VMOVUPS Y11, 32(DI)
	VZEROUPPER
	RET

// func gather16AVX2(dst *float32, stride int, table *float32, idx *int32, rows, k int)
//
// For r < rows and c < k: dst[r*stride+c*16 : +16] = table[idx[r*k+c]*16 : +16].
// The indices must be in range (the caller checks). The table row of the
// next row's same column is prefetched.
TEXT ·gather16AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ stride+8(FP), R8
	SHLQ $2, R8
	MOVQ table+16(FP), SI
	MOVQ idx+24(FP), BX
	MOVQ rows+32(FP), R9
	MOVQ k+40(FP), R10
	MOVQ R9, R11
	IMULQ R10, R11
	XORQ CX, CX
	TESTQ R9, R9
	JZ   gdone
	TESTQ R10, R10
	JZ   gdone

growloop:
	MOVQ DI, DX
	MOVQ R10, R12

gcolloop:
	LEAQ (CX)(R10*1), AX
	CMPQ AX, R11
	JGE  gnopf
	MOVLQSX (BX)(AX*4), AX
	SHLQ $6, AX
	PREFETCHT0 (SI)(AX*1)

gnopf:
	MOVLQSX (BX)(CX*4), AX
	SHLQ $6, AX
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS 32(SI)(AX*1), Y1
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ $64, DX
	INCQ CX
	DECQ R12
	JNZ  gcolloop
	ADDQ R8, DI
	DECQ R9
	JNZ  growloop

gdone:
	VZEROUPPER
	RET


// func offsetsAVX2(dst, src *int32, n int, off *int32, lim *uint32, period int) (bad bool)
//
// dst[i] = src[i] + off[i%period] for i < n (a multiple of 8), 8 at a
// time, period (8k) a multiple of 8; bad if any src[i] >= lim[i%period]
// as unsigned (max(v, lim) == v).
TEXT ·offsetsAVX2(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ off+24(FP), R8
	MOVQ lim+32(FP), R9
	MOVQ period+40(FP), R10
	VPXOR Y5, Y5, Y5 // lanes that saw an index out of range
	XORQ AX, AX      // i
	XORQ BX, BX      // i % period

offloop:
	CMPQ AX, CX
	JGE  offdone
	VMOVDQU (SI)(AX*4), Y0
	VMOVDQU (R8)(BX*4), Y1
	VMOVDQU (R9)(BX*4), Y2
	VPADDD  Y1, Y0, Y3
	VMOVDQU Y3, (DI)(AX*4)
	VPMAXUD Y2, Y0, Y4
	VPCMPEQD Y0, Y4, Y4
	VPOR    Y4, Y5, Y5
	ADDQ    $8, AX
	ADDQ    $8, BX
	CMPQ    BX, R10
	JNE     offloop
	XORQ    BX, BX
	JMP     offloop

offdone:
	VPTEST Y5, Y5
	SETNE  bad+48(FP)
	VZEROUPPER
	RET

// func dot8AVX(x, w *float32, n int, sums *[8]float32)
//
// sums[i] = Σ_{q < n/8} x[8q+i]·w[8q+i] for the eight lanes i, each product
// rounded to float32, then added in order of q (VMULPS then VADDPS, not an
// FMA): forwardDot's eight partial sums, computed as its portable loop
// computes them. n is a positive multiple of 8.
TEXT ·dot8AVX(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ sums+24(FP), DX
	VXORPS Y0, Y0, Y0
	XORQ AX, AX

dotloop:
	VMOVUPS (SI)(AX*4), Y1
	VMULPS  (DI)(AX*4), Y1, Y1
	VADDPS  Y1, Y0, Y0
	ADDQ    $8, AX
	CMPQ    AX, CX
	JL      dotloop
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET
