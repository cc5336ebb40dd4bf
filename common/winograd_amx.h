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
 * The products of a group of 32 Winograd tiles x 32 outputs are amx.h's
 * bn_amx_group, as the general convolutions' are (conv_gemm.c).
 */
#ifndef BN_WINOGRAD_AMX_H
#define BN_WINOGRAD_AMX_H

#include "amx.h"

/* Rows of a group (amx.h's bn_amx_group). A block of tiles is a multiple of
 * it, so that a group's last rows are inside V and M (past the block's
 * count they hold another block's values, which only fill rows of M that
 * nothing reads). */
#define WG_AMX_ROWS BN_AMX_ROWS

#endif
