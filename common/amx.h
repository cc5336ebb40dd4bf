/*
 * amx.h: AMX tiles, the few instructions bottleneck uses (tdpbf16ps and the
 * tile loads, stores and configuration), for the Winograd products
 * (winograd_amx.h) and the general convolutions (conv_gemm.c) under
 * --precision amx.
 *
 * Owns: how a thread configures its tiles (every tile 16 rows of 64 bytes:
 * A 16 x 32 bfloat16, B 16 channel pairs x 16 columns x 2, C 16 x 16 FP32)
 * and releases them. Whether AMX may be used at all is cpu.h's
 * (bn_cpu_features.amx_bf16: the CPU has it and Linux granted the tile
 * state to this process).
 *
 * The instructions are inline assembly, as for BF16 (GCC's AMX intrinsics
 * are macros of the same). The compiler never emits AMX code of its own, so
 * the tile registers hold their values between statements. GCC only, as
 * the BF16 engine: clang (the fuzzing build) has no AMX path.
 */
#ifndef BN_AMX_H
#define BN_AMX_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* GCC on x86-64, as WG_HAVE_BF16 (the Winograd AMX engine is BF16's around
 * other products; conv_winograd.c checks that the two agree). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BN_HAVE_AMX 1
#else
#define BN_HAVE_AMX 0
#endif

/* The 64-byte operand of ldtilecfg: palette 1, every tile 16 rows of 64
 * bytes. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} bn_amx_config;

/* Configure this thread's tiles (they start zeroed). Before a thread's
 * first tile instruction of a forward call. */
static inline void bn_amx_begin(void) {
#if BN_HAVE_AMX
    bn_amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
#endif
}

/* Return the tile state to its initial state: the kernel then need not
 * save its 8 KiB at every context switch. After a thread's last tile
 * instruction of a forward call. */
static inline void bn_amx_end(void) {
#if BN_HAVE_AMX
    __asm__ volatile("tilerelease" ::: "memory");
#endif
}

#if BN_HAVE_AMX
#define BN_AMX_LOAD(t, p, stride)                                                                  \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(p), "r"((long)(stride)) : "memory")
#define BN_AMX_STORE(t, p, stride)                                                                 \
    __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(p), "r"((long)(stride)) : "memory")
/* tmm[c] += tmm[a] tmm[b] (AT&T operand order: B, A, C) */
#define BN_AMX_DP(c, a, b) __asm__ volatile("tdpbf16ps %%tmm" #b ", %%tmm" #a ", %%tmm" #c ::)
#endif

/* Rows of bn_amx_group: two A tiles of 16. */
#define BN_AMX_ROWS 32

/* C (32 rows, 32 columns) = A (32 rows, 32 chunks channels) B, FP32 sums
 * from zero, over `chunks` chunks of 32 channels in order: the one product
 * kernel of both engines (the Winograd products, winograd_amx.h; the
 * general convolutions, conv_gemm.c). Tiles 0-3 hold C (rows 0-15 and 16-31,
 * columns 0-15 and 16-31), 4-5 the two A tiles, 6-7 the two B tiles: 4
 * tdpbf16ps per 4 tile loads.
 *   a: A's row 0, lda bytes between rows, chunk k at a + 32 k;
 *   b: B's tile for columns 0-15 of chunk 0 (16 channel pairs, each row the
 *      16 columns' two values side by side), ldb bytes between its rows;
 *      columns 16-31 b1 elements on, chunk k bstep elements on;
 *   c: C's row 0, ldc bytes between rows, columns 16-31 c2 floats on.
 * On the way, one cache line per chunk from each of pf (npf lines) and pf2
 * (npf2), into the L2: what the caller reads next. The caller configured
 * the tiles (bn_amx_begin). */
static inline void bn_amx_group(int chunks, const uint16_t *a, size_t lda, const uint16_t *b,
                                size_t b1, size_t ldb, size_t bstep, float *c, size_t ldc,
                                size_t c2, const char *pf, int npf, const char *pf2, int npf2) {
#if !BN_HAVE_AMX
    (void)chunks, (void)a, (void)lda, (void)b, (void)b1, (void)ldb, (void)bstep, (void)c;
    (void)ldc, (void)c2, (void)pf, (void)npf, (void)pf2, (void)npf2;
    abort();
#else
    __asm__ volatile("tilezero %%tmm0\n\ttilezero %%tmm1\n\ttilezero %%tmm2\n\ttilezero %%tmm3" ::);
    const uint16_t *a2 = (const uint16_t *)((const char *)a + 16 * lda);
    for (int k = 0; k < chunks; k++) {
        const int s = npf > 0 ? (npf + chunks - 1) / chunks : 0;
        for (int i = k * s; i < (k + 1) * s && i < npf; i++)
            __builtin_prefetch(pf + (size_t)i * 64, 0, 2);
        const int s2 = npf2 > 0 ? (npf2 + chunks - 1) / chunks : 0;
        for (int i = k * s2; i < (k + 1) * s2 && i < npf2; i++)
            __builtin_prefetch(pf2 + (size_t)i * 64, 0, 2);
        const uint16_t *bk = b + (size_t)k * bstep;
        BN_AMX_LOAD(4, a + 32 * k, lda);
        BN_AMX_LOAD(6, bk, ldb);
        BN_AMX_DP(0, 4, 6);
        BN_AMX_LOAD(7, bk + b1, ldb);
        BN_AMX_DP(1, 4, 7);
        BN_AMX_LOAD(5, a2 + 32 * k, lda);
        BN_AMX_DP(2, 5, 6);
        BN_AMX_DP(3, 5, 7);
    }
    float *cr = (float *)((char *)c + 16 * ldc);
    BN_AMX_STORE(0, c, ldc);
    BN_AMX_STORE(1, c + c2, ldc);
    BN_AMX_STORE(2, cr, ldc);
    BN_AMX_STORE(3, cr + c2, ldc);
#endif
}

#endif
