/*
 * winograd_bf16.h: the BF16 products of the Winograd engine
 * (--precision bf16, or fast where vdpbf16ps is fast). Included by
 * conv_winograd.c only; every function is inlined into its AVX-512 BF16
 * build (wg_work_bf16) and exists nowhere else.
 *
 * What changes against FP32: V and U are rounded to bfloat16 (8 bits of
 * mantissa, round to nearest even), each once: U when the layer is created,
 * V as the input transform writes it. The products M_p = V_p U_p then run as
 * vdpbf16ps dot products over pairs of input channels, accumulated in FP32,
 * and M, the output transform, bias, ReLU and pooling stay FP32. Twice the
 * multiply-adds per instruction, and half the bytes of V and U to move.
 *
 * Layouts (2-byte elements):
 *   V[p][tile][cinp]                 cinp a multiple of 32 (pairs of 16-channel
 *                                    vectors make one 64-byte store)
 *   U[p][cout/32][cinp/2][32][2]     for each pair of input channels, the 32
 *                                    output channels' two weights side by side:
 *                                    what vdpbf16ps multiplies with a broadcast
 *                                    V pair
 * Order of the sums: for every tile and output channel, pairs of channels in
 * increasing order, whatever the block, thread or batch: the same bytes for
 * the same image (tests/test_precision.c).
 *
 * The instructions are written as inline assembly, like wg_stream: GCC's
 * intrinsics would need the BF16 target on every function they are inlined
 * through, and the portable build must compile the same template (there
 * the BF16 branches are constant-false and removed). Clang (the fuzzing
 * build) rejects zmm operands in functions not compiled for AVX-512 before
 * it inlines them, so with clang there are no BF16 products:
 * WG_HAVE_BF16 is 0, bn_conv_winograd_has_precision says so, and the two
 * functions below are never called.
 */
#ifndef BN_WINOGRAD_BF16_H
#define BN_WINOGRAD_BF16_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#define WG_HAVE_BF16 0
#else
#define WG_HAVE_BF16 1
#endif

/* 32 bfloat16 at dst (64-byte aligned): channels c..c+15 from lo, c+16..c+31
 * from hi. stream: past the caches (as wg_stream). */
WG_INLINE void wg_bf16_store(uint16_t *dst, const wg_v16 *lo, const wg_v16 *hi, int stream) {
#if !WG_HAVE_BF16
    (void)dst, (void)lo, (void)hi, (void)stream;
    abort();
#else
    wg_v16 r;
    /* AT&T order: the first source fills the low 16 elements */
    __asm__("vcvtne2ps2bf16 %2, %1, %0" : "=v"(r) : "v"(*hi), "v"(*lo));
    if (stream)
        __asm__("vmovntps %1, %0" : "=m"(*(wg_v16 *)dst) : "v"(r));
    else
        *(wg_v16 *)dst = r;
#endif
}

/* One step of wg_kernel in BF16: pair i of input channels for `rows` rows
 * of A (V[p], lda elements apart) into the FP32 accumulators c0 (output
 * channels 0-15) and c1 (16-31). B is the packed (pairs, 32, 2) panel of U:
 * for each row, a 4-byte broadcast of its pair into a register and two
 * vdpbf16ps. (With the broadcast embedded in both vdpbf16ps instead, each
 * pair was loaded twice, 30 loads per step against the FP32 kernel's 16, and
 * the kernel ran at 1.55-1.65x the FP32 one in cache instead of 1.9-2.0x:
 * bn_conv_winograd_kernel_gmacs, as bench_net prints it, 2026-12-03.) */
WG_INLINE void wg_bf16_step(wg_v16 *c0, wg_v16 *c1, int rows, int i, const uint16_t *a, size_t lda,
                            const uint16_t *b) {
#if !WG_HAVE_BF16
    (void)c0, (void)c1, (void)rows, (void)i, (void)a, (void)lda, (void)b;
    abort();
#else
    wg_v16 b0 = *(const wg_v16 *)(b + (size_t)i * 64);
    wg_v16 b1 = *(const wg_v16 *)(b + (size_t)i * 64 + 32);
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        const uint32_t *s = (const uint32_t *)(a + r * lda + 2 * (size_t)i);
        wg_v16 pair;
        __asm__("vpbroadcastd %1, %0" : "=v"(pair) : "m"(*s));
        __asm__("vdpbf16ps %2, %1, %0" : "+v"(c0[r]) : "v"(b0), "v"(pair));
        __asm__("vdpbf16ps %2, %1, %0" : "+v"(c1[r]) : "v"(b1), "v"(pair));
    }
#endif
}

#endif
