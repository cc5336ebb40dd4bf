/*
 * resample.h: PIL's BILINEAR resize of 8-bit interleaved pixels, bit for bit,
 * fed one input row at a time.
 *
 * Owns the filter (PIL's triangle, stretched by the shrink factor when
 * shrinking, so the result is antialiased), its coefficients in PIL's 22-bit
 * fixed point, and the two separable passes with PIL's rounding to 8 bits
 * between them. Keras' load_img and torchvision's Resize both call PIL, so
 * pixels equal to PIL's give input tensors, and features, equal to theirs.
 *
 * Rows arrive top to bottom and are never held all at once: a decoder can
 * stream a large photo through it with memory for a few rows and the small
 * output (plus, when the vertical pass runs first, one accumulator row per
 * output row at the input's width).
 *
 * Only a window of the target (the centre crop) is computed: output pixels
 * outside it cost nothing, and the window's pixels equal those of the full
 * resize.
 */
#ifndef BN_RESAMPLE_H
#define BN_RESAMPLE_H
#include "error.h"
#include <stdint.h>

/* Longest side accepted (pixels). Keeps the coefficient tables small
 * (two 32-bit taps per input pixel at most); JPEG, WebP and GIF cannot
 * exceed 65535 anyway. */
#define BN_RESAMPLE_MAX_SIDE 1000000

typedef struct {
    int width, height, bands;       /* input: bands 8-bit samples per pixel */
    int out_width, out_height;      /* the whole target */
    int win_x, win_y, win_w, win_h; /* the part of the target computed */
    int rows_first;                 /* 1: the horizontal pass first (PIL's order for an upright
                                     * image); 0: the vertical pass first (PIL's order when
                                     * EXIF orientation swaps the axes) */
    int isa;                        /* bn_resample_isa: 0 (AUTO) for the fastest this CPU runs */
} bn_resample_plan;

/* Which inner loops a resampler runs. Every one gives the same bytes
 * (integer arithmetic); AUTO takes the widest the CPU has (common/cpu.h).
 * Tests name one to compare them. */
typedef enum {
    BN_RESAMPLE_AUTO = 0,
    BN_RESAMPLE_SCALAR,
    BN_RESAMPLE_AVX2,
    BN_RESAMPLE_AVX512,
} bn_resample_isa;

/* 1 when this CPU (and this build) can run that set's loops. */
int bn_resample_isa_available(bn_resample_isa isa);

/* "scalar", "avx2", "avx512": what AUTO chooses here. */
const char *bn_resample_isa_name(bn_resample_isa isa);
bn_resample_isa bn_resample_isa_auto(void);

typedef struct bn_resampler bn_resampler;

/* Check the plan and allocate. BN_EINVAL for sizes out of range, a window
 * outside the target or an instruction set this CPU lacks, BN_ENOMEM. name is for messages only.
 * When the vertical-first order would need more than 64 MB of accumulators (an image tens of
 * thousands of pixels wide), the horizontal pass runs first instead: pixels then differ from PIL's
 * by rounding between the passes (at most one grey level). */
int bn_resampler_new(const bn_resample_plan *plan, const char *name, bn_resampler **out,
                     bn_error *err);

/* Input row y (width * bands bytes); rows must come in order 0..height-1. */
void bn_resampler_push(bn_resampler *r, const uint8_t *row);

/* After every row was pushed: win_w * win_h * bands bytes, row-major. */
void bn_resampler_finish(bn_resampler *r, uint8_t *out);

void bn_resampler_free(bn_resampler *r);

#endif
