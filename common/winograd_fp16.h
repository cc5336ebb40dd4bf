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
 *   V[p][tile][cinp]        binary16, BF16's layout and strides (vstride in
 *                           2-byte elements, cinp a multiple of 32): a
 *                           chunk's 32 channels are one 64-byte line
 *   scales[tile][cinp/32]   after V in the block: 2^(e_V + e_U) per chunk
 *   U[p][cout/32][cinp][32] binary16, the FP32 layout at half the bytes
 * The products read V's value through vfmadd231ph's embedded broadcast, a
 * {1to32} memory operand. (Measured on an Intel Xeon with avx512_fp16,
 * bench/f16_broadcast: 0.93 of the instruction's peak; a vpbroadcastw into
 * a register halves the rate, a shuffle uop on the port the FMAs need; the
 * first layout, the value twice in 4 bytes and a 32-bit broadcast, 0.92 but
 * twice V's bytes, and V's traffic is what limits FP16 in the network.)
 *
 * Order of the sums: for every tile and output channel, channels in
 * increasing order within a chunk (binary16), chunks in increasing order
 * (FP32), whatever the block, thread or batch: the same bytes for the same
 * image.
 *
 * Without avx512_fp16 the products can be run in software
 * (BN_FP16_EMULATE=1, wg_f16_chunk_emu): each lane's multiply-add computed
 * exactly and rounded once to binary16 as vfmadd231ph does, everything else
 * the same code. It is about 100x slower, and it is what the tests check
 * the FP16 path with on hosts without avx512_fp16; on hosts with it, they
 * check that the instruction and the emulation give the same bytes. "The
 * same code" means the same machine code: the emulation is a run-time
 * branch inside the one compiled FP16 engine (wg_job.f16emu), not a second
 * instance of it. Two instances once differed in the last bits of the FP32
 * transforms, because GCC fused multiplies and adds (-ffp-contract=fast)
 * differently in each; V's rounding to binary16 turned that into whole
 * binary16 ulps in about 1% of the outputs (found on the first host with
 * avx512_fp16, an Intel Xeon).
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

/* A chunk's 32 channels of one position into V's line at dst (64-byte
 * aligned): lo (channels 0-15) and hi (16-31) times s (a power of two),
 * rounded to binary16 (nearest even). With stream, a non-temporal store. */
WG_INLINE void wg_f16_store(uint16_t *dst, const wg_v16 *lo, const wg_v16 *hi, float s,
                            int stream) {
#if !WG_HAVE_FP16
    (void)dst, (void)lo, (void)hi, (void)s, (void)stream;
    abort();
#else
    wg_v16 ylo = *lo * s, yhi = *hi * s, r;
    wg_h16 hlo, hhi;
    __asm__("vcvtps2ph $0, %1, %0" : "=v"(hlo) : "v"(ylo));
    __asm__("vcvtps2ph $0, %1, %0" : "=v"(hhi) : "v"(yhi));
    /* (%g1: hlo's register as a zmm; its upper half is what hhi replaces) */
    __asm__("vinserti64x4 $1, %2, %g1, %0" : "=v"(r) : "v"(hlo), "v"(hhi));
    if (stream)
        __asm__("vmovntps %1, %0" : "=m"(*(wg_v16 *)dst) : "v"(r));
    else
        *(wg_v16 *)dst = r;
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

/* One chunk of wg_kernel in FP16, as one block of assembly: acc[r] (r <
 * rows, 32 output channels each) = the binary16 sum over n steps of
 * a[r][i] b[i], from zero. a: the chunk's first channel of row 0 (rows lda
 * elements of 4 bytes apart, each the binary16 value twice); b: its first
 * line of 32 binary16 weights (64-byte aligned, 64 bytes per line); n >= 1.
 * Per step: one line of b, then per row a 32-bit broadcast (a plain load)
 * and vfmadd231ph, in increasing row order; rows 0-13 are addressed from
 * four bases (a, a + 3 lda, a + 4 lda, a + 9 lda) with lda as a scaled
 * index, so no row needs a register of its own.
 *
 * Why assembly: written as one asm statement per multiply-add, GCC kept a
 * copy of every accumulator on the stack and stored it after each
 * vfmadd231ph (one store per FMA: the products ran at the FP32 rate). Here
 * the accumulators are the statement's register operands for the whole
 * chunk. ROWS is a literal (one statement per row count, chosen by a switch
 * that constant rows fold away), so the rows past it are left out by the
 * assembler's .if. */
#define WG_F16_IF(ROWS, R, TEXT) ".if " #ROWS " > " #R "\n\t" TEXT ".endif\n\t"
#define WG_F16_ROW(ROWS, R, ADDR)                                                                  \
    WG_F16_IF(ROWS, R, "vfmadd231ph " ADDR "%{1to32%}, %[u], %[c" #R "]\n\t")
#define WG_F16_ZERO(ROWS, R) WG_F16_IF(ROWS, R, "vpxord %[c" #R "], %[c" #R "], %[c" #R "]\n\t")
// clang-format off
#define WG_F16_CHUNK_ASM(ROWS)                                                   \
    __asm__(WG_F16_ZERO(ROWS, 0) WG_F16_ZERO(ROWS, 1) WG_F16_ZERO(ROWS, 2)       \
            WG_F16_ZERO(ROWS, 3) WG_F16_ZERO(ROWS, 4) WG_F16_ZERO(ROWS, 5)       \
            WG_F16_ZERO(ROWS, 6) WG_F16_ZERO(ROWS, 7) WG_F16_ZERO(ROWS, 8)       \
            WG_F16_ZERO(ROWS, 9) WG_F16_ZERO(ROWS, 10) WG_F16_ZERO(ROWS, 11)     \
            WG_F16_ZERO(ROWS, 12) WG_F16_ZERO(ROWS, 13)                          \
            WG_F16_IF(ROWS, 3, "lea (%[a0],%[l],2), %[a3]\n\tadd %[l], %[a3]\n\t") \
            WG_F16_IF(ROWS, 4, "lea (%[a0],%[l],4), %[a4]\n\t")                  \
            WG_F16_IF(ROWS, 9, "lea (%[a0],%[l],8), %[a9]\n\tadd %[l], %[a9]\n\t") \
            "1:\n\t"                                                             \
            "vmovdqa64 (%[b]), %[u]\n\t"                                         \
            WG_F16_ROW(ROWS, 0, "(%[a0])")                                       \
            WG_F16_ROW(ROWS, 1, "(%[a0],%[l],1)")                                \
            WG_F16_ROW(ROWS, 2, "(%[a0],%[l],2)")                                \
            WG_F16_ROW(ROWS, 3, "(%[a3])")                                       \
            WG_F16_ROW(ROWS, 4, "(%[a4])")                                       \
            WG_F16_ROW(ROWS, 5, "(%[a3],%[l],2)")                                \
            WG_F16_ROW(ROWS, 6, "(%[a4],%[l],2)")                                \
            WG_F16_ROW(ROWS, 7, "(%[a3],%[l],4)")                                \
            WG_F16_ROW(ROWS, 8, "(%[a0],%[l],8)")                                \
            WG_F16_ROW(ROWS, 9, "(%[a9])")                                       \
            WG_F16_ROW(ROWS, 10, "(%[a9],%[l],1)")                               \
            WG_F16_ROW(ROWS, 11, "(%[a3],%[l],8)")                               \
            WG_F16_ROW(ROWS, 12, "(%[a4],%[l],8)")                               \
            WG_F16_ROW(ROWS, 13, "(%[a9],%[l],4)")                               \
            "add $2, %[a0]\n\t"                                                  \
            WG_F16_IF(ROWS, 3, "add $2, %[a3]\n\t")                              \
            WG_F16_IF(ROWS, 4, "add $2, %[a4]\n\t")                              \
            WG_F16_IF(ROWS, 9, "add $2, %[a9]\n\t")                              \
            "add $64, %[b]\n\t"                                                  \
            "dec %[n]\n\t"                                                       \
            "jnz 1b"                                                             \
            : [a0] "+r"(pa), [b] "+r"(pb), [n] "+r"(cnt), [a3] "=&r"(a3),        \
              [a4] "=&r"(a4), [a9] "=&r"(a9), [u] "=&v"(u),                      \
              [c0] "=&v"(acc[0]), [c1] "=&v"(acc[1]), [c2] "=&v"(acc[2]),        \
              [c3] "=&v"(acc[3]), [c4] "=&v"(acc[4]), [c5] "=&v"(acc[5]),        \
              [c6] "=&v"(acc[6]), [c7] "=&v"(acc[7]), [c8] "=&v"(acc[8]),        \
              [c9] "=&v"(acc[9]), [c10] "=&v"(acc[10]), [c11] "=&v"(acc[11]),    \
              [c12] "=&v"(acc[12]), [c13] "=&v"(acc[13])                         \
            : [l] "r"(lbytes)                                                    \
            : "memory")
// clang-format on

_Static_assert(WG_ROWS == 14, "wg_f16_chunk addresses 14 rows");

WG_INLINE void wg_f16_chunk(wg_v16 acc[WG_ROWS], const int rows, const uint16_t *a, size_t lda,
                            const uint16_t *b, int n) {
#if !WG_HAVE_FP16
    (void)acc, (void)rows, (void)a, (void)lda, (void)b, (void)n;
    abort();
#else
    const char *pa = (const char *)a, *pb = (const char *)b;
    const size_t lbytes = lda * 2;
    long cnt = n;
    const char *a3, *a4, *a9;
    wg_v16 u;
    switch (rows) {
    case 14: WG_F16_CHUNK_ASM(14); break;
    case 13: WG_F16_CHUNK_ASM(13); break;
    case 12: WG_F16_CHUNK_ASM(12); break;
    case 11: WG_F16_CHUNK_ASM(11); break;
    case 10: WG_F16_CHUNK_ASM(10); break;
    case 9: WG_F16_CHUNK_ASM(9); break;
    case 8: WG_F16_CHUNK_ASM(8); break;
    case 7: WG_F16_CHUNK_ASM(7); break;
    case 6: WG_F16_CHUNK_ASM(6); break;
    case 5: WG_F16_CHUNK_ASM(5); break;
    case 4: WG_F16_CHUNK_ASM(4); break;
    case 3: WG_F16_CHUNK_ASM(3); break;
    case 2: WG_F16_CHUNK_ASM(2); break;
    case 1: WG_F16_CHUNK_ASM(1); break;
    default: abort();
    }
#endif
}

/* wg_f16_chunk in software (BN_FP16_EMULATE): the same sums, lane by lane,
 * in the same order. */
static __attribute__((noinline)) void wg_f16_chunk_emu(wg_v16 acc[WG_ROWS], int rows,
                                                       const uint16_t *a, size_t lda,
                                                       const uint16_t *b, int n) {
    for (int r = 0; r < rows; r++) {
        uint16_t h[32] = {0};
        for (int i = 0; i < n; i++) {
            const float v = bn_f16_float(a[r * lda + i]);
            for (int l = 0; l < 32; l++)
                h[l] = bn_f16_fma(v, bn_f16_float(b[(size_t)i * 32 + l]), h[l]);
        }
        memcpy(&acc[r], h, sizeof h);
    }
}

#endif
