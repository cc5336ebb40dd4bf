/*
 * winograd_fp16.h: the FP16 products of the Winograd engine (--precision
 * fp16, or fast where vfmadd231ph is fast: Intel CPUs with avx512_fp16).
 * Included by conv_winograd.c only, after winograd_bf16.h; every function
 * is inlined into the engine's AVX-512 FP16 builds (wg_work_fp16,
 * wg_work_fp16_emu).
 *
 * What changes against FP32: V and U are rounded to IEEE binary16 (11 bits
 * of mantissa, round to nearest even), each once: U when the layer is
 * created, V as the input transform writes it. The products M_p = V_p U_p
 * run as vfmadd231ph: 32 output channels per instruction, each
 * multiply-add rounded once to binary16, in an FP16 accumulator that is
 * widened into the FP32 sum after every chunk of WG_F16_K = 32 input
 * channels (bench/precision_model: 16-channel runs are 3-5x closer to exact
 * than BF16, 64-channel runs still 2x; 32 halves the widening's cost
 * against 16). M, the output transform, bias, ReLU and pooling stay FP32.
 *
 * Range. binary16 ends at 65504, and Winograd's V reaches 156x the input
 * (B^T's rows sum to 12.5 in absolute value), so nothing is rounded
 * unscaled. Every (tile, chunk) row of V is scaled by a power of two that
 * brings its largest |V| into [256, 512) (wg_f16_scale_of), and the layer's
 * U by one that brings its largest |U| into [1, 2) (wg_prepare_fp16). A
 * chunk's partial sum is then at most 32 x 512 x 2 = 32768 whatever the
 * data: it never overflows, and small inputs never fall into binary16's
 * subnormals. The widening multiplies by the inverse of both scales, a
 * power of two too: exact. So the result does not depend on the scales
 * (scaling the input by 2^k scales a bias-free output by exactly 2^k,
 * tests/test_precision.c), only on the roundings to binary16.
 *
 * Layouts:
 *   V[p][tile][cinp]        4 bytes per element: the binary16 value twice
 *                           (low and high half), so that a 32-bit broadcast,
 *                           a plain load, gives it in all 32 lanes; the
 *                           FP32 layout and strides, cinp a multiple of 32
 *   scales[tile][cinp/32]   after V in the block: 2^(e_V + e_U) per chunk
 *   U[p][cout/32][cinp][32] binary16, the FP32 layout at half the bytes
 * (A 16-bit broadcast, vpbroadcastw or an embedded {1to32}, would keep V at
 * 2 bytes, but costs a shuffle uop beside the load on Intel cores, on the
 * port the FMAs need.)
 *
 * Order of the sums: for every tile and output channel, channels in
 * increasing order within a chunk (binary16), chunks in increasing order
 * (FP32), whatever the block, thread or batch: the same bytes for the same
 * image.
 *
 * Without avx512_fp16 the products can be run in software
 * (BN_FP16_EMULATE=1, wg_f16_step_emu): each lane's multiply-add computed
 * exactly and rounded once to binary16 as vfmadd231ph does, everything else
 * the same code. It is about 100x slower, and it is what the tests check
 * the FP16 path with on hosts without avx512_fp16; on hosts with it, they
 * check that the instruction and the emulation give the same bytes.
 */
#ifndef BN_WINOGRAD_FP16_H
#define BN_WINOGRAD_FP16_H

#include "f16_fma.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Input channels per FP16 partial sum (one widening per chunk). Also the
 * channels that share a scale: the input transform's two staged vectors. */
#define WG_F16_K 32
_Static_assert(WG_F16_K == 32, "wg_input_tile scales pairs of 16-channel vectors");
/* Largest |V| after scaling: [WG_F16_VMAX / 2, WG_F16_VMAX). */
#define WG_F16_VMAX 512.0f

typedef uint16_t wg_h16 __attribute__((vector_size(32)));
typedef uint32_t wg_u16 __attribute__((vector_size(64)));

/* Same as the BF16 instructions: inline assembly, GCC only. */
#define WG_HAVE_FP16 WG_HAVE_BF16

/* The power of two that brings vmax (the largest |V| of a chunk, >= 0) into
 * [WG_F16_VMAX / 2, WG_F16_VMAX); 1 when vmax is 0 or not finite (a chunk
 * of zeros; an input with Inf or NaN, which the output keeps). */
static inline float wg_f16_scale_of(float vmax) {
    if (!(vmax > 0) || !isfinite(vmax))
        return 1.0f;
    int e;
    (void)frexpf(vmax, &e); /* vmax = m 2^e, m in [0.5, 1) */
    e = 9 - e;              /* within float's normal powers of two, and their inverses too */
    return ldexpf(1.0f, e < -126 ? -126 : e > 126 ? 126 : e);
}

/* m = max(m, |x|), lane by lane. */
WG_INLINE void wg_f16_absmax(wg_v16 *m, const wg_v16 *x) {
#if !WG_HAVE_FP16
    (void)m, (void)x;
    abort();
#else
    const wg_i16 abs = (wg_i16){0} + 0x7fffffff;
    wg_v16 a = (wg_v16)((wg_i16)*x & abs);
    __asm__("vmaxps %1, %0, %0" : "+v"(*m) : "v"(a));
#endif
}

/* The largest of the 16 lanes of m (all >= 0). */
static inline float wg_f16_hmax(const wg_v16 *m) {
    float r = 0;
    for (int i = 0; i < 16; i++)
        r = (*m)[i] > r ? (*m)[i] : r;
    return r;
}

/* 16 floats times s (a power of two), rounded to binary16 (nearest even)
 * and each doubled into both halves of its 32-bit lane (V's layout), into
 * out. */
WG_INLINE void wg_f16_dup(wg_v16 *out, const wg_v16 *x, float s) {
#if !WG_HAVE_FP16
    (void)out, (void)x, (void)s;
    abort();
#else
    wg_v16 y = *x * s;
    wg_h16 h;
    __asm__("vcvtps2ph $0, %1, %0" : "=v"(h) : "v"(y));
    wg_u16 w = __builtin_convertvector(h, wg_u16);
    *out = (wg_v16)(w | (w << 16));
#endif
}

/* FP16 accumulator (32 lanes, output channels 0-31) -> FP32: lo gets
 * channels 0-15, hi 16-31. Exact. */
WG_INLINE void wg_f16_widen(const wg_v16 *acc, wg_v16 *lo, wg_v16 *hi) {
#if !WG_HAVE_FP16
    (void)acc, (void)lo, (void)hi;
    abort();
#else
    wg_h16 top;
    __asm__("vcvtph2ps %t1, %0" : "=v"(*lo) : "v"(*acc));
    __asm__("vextracti64x4 $1, %1, %0" : "=v"(top) : "v"(*acc));
    __asm__("vcvtph2ps %1, %0" : "=v"(*hi) : "v"(top));
#endif
}

/* One step of wg_kernel in FP16: input channel i for `rows` rows of A (V[p],
 * lda elements of 4 bytes apart) into the FP16 accumulators acc (32 output
 * channels each). b: the 32 binary16 weights of channel i. A 32-bit
 * broadcast (a plain load) gives the doubled binary16 in every lane. */
WG_INLINE void wg_f16_step(wg_v16 *acc, int rows, int i, const uint32_t *a, size_t lda,
                           const uint16_t *b) {
#if !WG_HAVE_FP16
    (void)acc, (void)rows, (void)i, (void)a, (void)lda, (void)b;
    abort();
#else
    wg_v16 bv = *(const wg_v16 *)(b + (size_t)i * 32);
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        wg_v16 s;
        __asm__("vpbroadcastd %1, %0" : "=v"(s) : "m"(a[r * lda + i]));
        __asm__("vfmadd231ph %2, %1, %0" : "+v"(acc[r]) : "v"(bv), "v"(s));
    }
#endif
}

/* wg_f16_step in software (BN_FP16_EMULATE): the same sums, lane by lane. */
WG_INLINE void wg_f16_step_emu(wg_v16 *acc, int rows, int i, const uint32_t *a, size_t lda,
                               const uint16_t *b) {
    float bf[32];
    for (int l = 0; l < 32; l++)
        bf[l] = bn_f16_float(b[(size_t)i * 32 + l]);
    for (int r = 0; r < rows; r++) {
        const float v = bn_f16_float((uint16_t)a[r * lda + i]);
        uint16_t h[32];
        memcpy(h, &acc[r], sizeof h);
        for (int l = 0; l < 32; l++)
            h[l] = bn_f16_fma(v, bf[l], h[l]);
        memcpy(&acc[r], h, sizeof h);
    }
}

#endif
