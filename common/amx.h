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

#include <stdint.h>
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

#endif
