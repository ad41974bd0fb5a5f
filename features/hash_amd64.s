//go:build amd64 && !purego

#include "textflag.h"

// One FNV-1a step over byte b of every lane's value (Z4): Z5 = (Z5 ^ byte) * prime.
#define STEP(b) \
	VPSRLQ $(8*b), Z4, Z6 \
	VPANDQ Z10, Z6, Z6 \
	VPXORQ Z6, Z5, Z5 \
	VPMULLQ Z9, Z5, Z5

// func hash8x8AVX512(dst *uint64, data *byte, offs *int32, base int32, size int, n int) int
//
// Hashes values as hashValues does, eight a group, while each value of a
// group has 8 bytes or none: value i spans data[offs[i]-base : offs[i+1]-base]
// (size bytes of data); dst[i] = FNV-1a of it. n (a multiple of 8) values
// at most; it returns how many it hashed, stopping before the first group
// with a value of another length or one that would end past size. Eight
// lanes, each its value's chain of multiplications: the value loaded by a
// gather (none for an empty one), its eight bytes taken one by one from the
// load, and an empty value's lane given the offset basis. Only Z0–Z15:
// VZEROUPPER cleans all it used.
TEXT ·hash8x8AVX512(SB), NOSPLIT, $0-56
	MOVQ dst+0(FP), DI
	MOVQ data+8(FP), SI
	MOVQ offs+16(FP), DX
	MOVLQSX base+24(FP), R8
	MOVQ size+32(FP), R9
	MOVQ n+40(FP), CX
	XORQ AX, AX
	MOVQ $0xcbf29ce484222325, R10
	VPBROADCASTQ R10, Z8  // the offset basis
	MOVQ $0x100000001b3, R10
	VPBROADCASTQ R10, Z9  // the prime
	MOVQ $0xff, R10
	VPBROADCASTQ R10, Z10 // a byte's mask
	MOVL $0xfffffff7, R10
	VPBROADCASTD R10, Y11 // ~8: a length 0 or 8 has no other bit
	VPBROADCASTD R8, Y12  // base
loop:
	CMPQ AX, CX
	JGE  done
	VMOVDQU32 (DX)(AX*4), Y0  // offs[i..i+7]
	VMOVDQU32 4(DX)(AX*4), Y1 // offs[i+1..i+8]
	VPSUBD Y0, Y1, Y2         // the lengths
	VPTESTMD Y11, Y2, K1      // lanes whose length is neither 0 nor 8
	KORTESTW K1, K1
	JNZ  done
	MOVLQSX 32(DX)(AX*4), R10 // the group's end, offs[i+8]-base, within data
	SUBQ R8, R10
	CMPQ R10, R9
	JGT  done
	VPTESTMD Y2, Y2, K2       // lanes of 8 bytes
	KMOVW K2, K3              // the gather clears its mask
	VPSUBD Y12, Y0, Y3        // where each value starts in data
	VPXORQ Z4, Z4, Z4
	VPGATHERDQ (SI)(Y3*1), K3, Z4
	VMOVDQA64 Z8, Z5
	STEP(0)
	STEP(1)
	STEP(2)
	STEP(3)
	STEP(4)
	STEP(5)
	STEP(6)
	STEP(7)
	VPBLENDMQ Z5, Z8, K2, Z7  // an empty value's hash is the basis
	VMOVDQU64 Z7, (DI)(AX*8)
	ADDQ $8, AX
	JMP  loop
done:
	MOVQ AX, ret+48(FP)
	VZEROUPPER
	RET
