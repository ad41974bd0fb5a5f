//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX(w, grad, m, v *float32, n int, k *Adam)
//
// AdamUpdate over n elements, n a multiple of 8, eight at a time in YMM
// registers (AVX). The constants of k are broadcast into Y7–Y15; Y6 is
// zero. Each operation is the scalar one of adamGo, on 8 lanes.
TEXT ·adamAVX(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), R10
	VBROADCASTSS 0(R10), Y7   // β1
	VBROADCASTSS 4(R10), Y8   // β2
	VBROADCASTSS 8(R10), Y9   // 1-β1
	VBROADCASTSS 12(R10), Y10 // 1-β2
	VBROADCASTSS 16(R10), Y11 // 1/(1-β1ᵗ)
	VBROADCASTSS 20(R10), Y12 // 1/(1-β2ᵗ)
	VBROADCASTSS 24(R10), Y13 // ε
	VBROADCASTSS 28(R10), Y14 // -η
	VBROADCASTSS 32(R10), Y15 // L2
	MOVBLZX 36(R10), R11      // L2Used
	VXORPS Y6, Y6, Y6
	XORQ AX, AX

loop:
	CMPQ AX, CX
	JGE  done
	VMOVUPS (SI)(AX*4), Y0 // g
	VMOVUPS (DI)(AX*4), Y1 // w
	TESTQ R11, R11
	JZ    nol2
	VMULPS Y15, Y1, Y2     // w·L2
	VADDPS Y2, Y0, Y0      // g' = g + w·L2

nol2:
	VMULPS  Y9, Y0, Y3         // g'·(1-β1)
	VMULPS  Y0, Y0, Y4         // g'·g'
	VMULPS  Y10, Y4, Y4        // ·(1-β2)
	VMOVUPS (R8)(AX*4), Y2
	VMULPS  Y7, Y2, Y2         // m·β1
	VADDPS  Y2, Y3, Y3         // the new m
	VMOVUPS (R9)(AX*4), Y2
	VMULPS  Y8, Y2, Y2         // v·β2
	VADDPS  Y2, Y4, Y4         // the new v
	VMOVUPS Y3, (R8)(AX*4)
	VMOVUPS Y4, (R9)(AX*4)
	VMULPS  Y11, Y3, Y3        // m·c1
	VMULPS  Y12, Y4, Y4        // v·c2
	VSQRTPS Y4, Y4
	VADDPS  Y13, Y4, Y4        // + ε
	VMULPS  Y14, Y3, Y3        // ·(-η)
	VDIVPS  Y4, Y3, Y3         // (m·c1·(-η)) / (sqrt(v·c2) + ε)
	VADDPS  Y3, Y1, Y1         // w + that
	VMOVUPS Y1, (DI)(AX*4)
	VMOVUPS Y6, (SI)(AX*4)     // g = 0
	ADDQ    $8, AX
	JMP     loop

done:
	VZEROUPPER
	RET
