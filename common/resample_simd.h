/*
 * resample_simd.h: the inner loops of resample.c for AVX2 and AVX-512,
 * internal to resample.c (and its test, through bn_resample_plan.isa).
 *
 * Owns the three loops a resize spends its time in, each the scalar loop of
 * resample.c with the same 32-bit integer products and sums, only more of
 * them per instruction: integer arithmetic is exact and its sums do not
 * depend on their order, so every path gives the same bytes (test_resample
 * compares them on real photos and odd sizes). Exports one table of function
 * pointers per instruction set; resample.c picks one when a resampler is
 * created, from common/cpu.h.
 */
#ifndef BN_RESAMPLE_SIMD_H
#define BN_RESAMPLE_SIMD_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    /* Outputs 0..n-1 of one horizontal pass, bands 3 or 4: output i sums
     * count[i] pixels from in + (start[i] - in0) * bands (in's first pixel
     * is input column in0) with weights k + i * ksize, starting from half
     * (PIL's rounding), then shifts by BN_RESAMPLE_BITS and clips to 8 bits.
     * Reads 4 bytes per 3-band pixel: the caller passes only outputs whose
     * last pixel is not the last of the row. */
    void (*hpass)(const int *start, const int *count, const int32_t *k, int ksize, int n,
                  const uint8_t *in, int in0, int bands, uint8_t *out);
    /* acc[j] += src[j] * k, j < m: one input row into one output row's sums. */
    void (*vacc)(int32_t *acc, const uint8_t *src, size_t m, int32_t k);
    /* out[j] = acc[j] >> BN_RESAMPLE_BITS clipped to 0..255, j < m. */
    void (*clip)(uint8_t *out, const int32_t *acc, size_t m);
} bn_resample_kernels;

/* NULL where the compiler cannot build that instruction set's code. */
const bn_resample_kernels *bn_resample_simd_avx2(void);
const bn_resample_kernels *bn_resample_simd_avx512(void);

/* PIL's fixed point: 32 bits, minus 8 for the pixel, minus 2 of headroom. */
#define BN_RESAMPLE_BITS 22

#endif
