/*
 * winograd_amx.h: the Winograd engine's products on AMX tiles
 * (--precision amx, or fast where AMX is the quickest). Included by
 * conv_winograd.c only.
 *
 * The values are BF16's (winograd_bf16.h): V and U rounded once to
 * bfloat16, in the same layouts, written by the same input transform. Only
 * the products differ: instead of vdpbf16ps on 16 lanes, tdpbf16ps on tiles,
 * one instruction for a 16 x 16 block of M over 32 input channels (8192
 * multiply-adds where vdpbf16ps does 32).
 *
 * Why a precision of its own and not a faster BF16 kernel: the tile unit
 * sums differently. Each pair of products is exact and rounded once into
 * the FP32 sum, but over the 32 channels of an instruction its rounding
 * follows no order that a sequential model reproduces (measured on a Xeon
 * with AMX, 2026-12-06: one pair matches `acc + round(p0 + p1)` in every
 * case; two pairs or more differ from every sequential and tree model tried
 * in 2-60% of outputs, by an ulp). So AMX vectors are not vdpbf16ps' vectors
 * and cannot be recomputed without AMX; they carry their own name ("amx")
 * in the feature set, as every precision does. They are still a function
 * of the image alone: each row of a tile (one Winograd tile) is summed over
 * the same 32-channel chunks in the same order whatever block, thread or
 * batch computes it, and rows do not mix.
 *
 * Layouts: V[p][tile][cinp] (2-byte, cinp a multiple of 32, rows lda
 * apart) is A as it is: a 16-row tile of it is 16 Winograd tiles x 32
 * channels. U[p][cout/32][cinp/2][32][2] is B as it is: the 16 pairs of a
 * 32-channel chunk, 16 outputs of the panel per row (128 bytes apart, the
 * second 16 outputs 64 bytes on). M is written in place: a row is one
 * Winograd tile's 16 outputs at one position, mtile floats apart.
 *
 * Tiles 0-3 hold C (rows 0-15 and 16-31 of a group of 32 Winograd tiles,
 * outputs 0-15 and 16-31), 4-5 the two A tiles, 6-7 the two B tiles: 4
 * tdpbf16ps per 4 tile loads.
 *
 * The tile instructions and their configuration are amx.h's.
 */
#ifndef BN_WINOGRAD_AMX_H
#define BN_WINOGRAD_AMX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "amx.h"

/* Rows of a group: two A tiles of 16. A block of tiles is a multiple of
 * it, so that a group's last rows are inside V and M (past the block's
 * count they hold another block's values, which only fill rows of M that
 * nothing reads). */
#define WG_AMX_ROWS 32

/* M rows [0, 32) x 32 outputs = V rows [0, 32) x U (chunks of 32 channels),
 * for one position and one panel of 32 outputs.
 * a: V's row 0 at this position (lda bytes between rows); b: the panel of U;
 * c: M's row 0 (ldc bytes between rows; the second 16 outputs c2 floats
 * on). On the way, one cache line per chunk from each of pf (npf lines)
 * and pf2 (npf2), into the L2: what comes next (see wg_step_product). */
static inline void wg_amx_group(int chunks, const uint16_t *a, size_t lda, const uint16_t *b,
                                float *c, size_t ldc, size_t c2, const char *pf, int npf,
                                const char *pf2, int npf2) {
#if !BN_HAVE_AMX
    (void)chunks, (void)a, (void)lda, (void)b, (void)c, (void)ldc, (void)c2;
    (void)pf, (void)npf, (void)pf2, (void)npf2;
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
        const uint16_t *bk = b + (size_t)k * 16 * 64;
        BN_AMX_LOAD(4, a + 32 * k, lda);
        BN_AMX_LOAD(6, bk, 128);
        BN_AMX_DP(0, 4, 6);
        BN_AMX_LOAD(7, bk + 32, 128);
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
