/*
 * resample.c: PIL's BILINEAR resize, streamed (see resample.h).
 *
 * PIL resizes with a separable convolution: for each output index it centres
 * a triangle filter on the input (scaled by the shrink factor when shrinking,
 * which is what makes it antialiased), normalises the weights to sum to one,
 * turns them into 22-bit fixed point, and rounds each pass to 8 bits. Every
 * one of those steps is reproduced here in the same order with the same
 * arithmetic, so the pixels are PIL's exactly, not approximately: integer
 * sums do not depend on the order they are added in, which is what lets the
 * vertical pass accumulate row by row as rows arrive instead of holding the
 * image. The same integers make the inner loops free to run many samples per
 * instruction: resample_simd.c has them for AVX2 and AVX-512, chosen when a
 * resampler is created; the loops here are the reference they are tested
 * against (test_resample) and the path on other CPUs.
 */
#include "resample.h"
#include "cpu.h"
#include "resample_simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS BN_RESAMPLE_BITS
#define HALF ((int32_t)1 << (PRECISION_BITS - 1))

/* Above this the vertical-first order gives way (see resample.h). */
#define RESAMPLE_MAX_ACC ((size_t)64 << 20)

/* One axis: in pixels to a target of out, of which the n outputs from first
 * on are computed. Output i reads inputs start[i] .. start[i] + count[i] - 1
 * with weights k[i * ksize ..]. [lo, hi) is every input any output reads. */
typedef struct {
    int identity; /* in == out: PIL skips the pass; the window is copied */
    int n, ksize;
    int *start, *count;
    int32_t *k;
    int lo, hi;
    int nsafe; /* outputs 0..nsafe-1 do not read the last input pixel: a
                * 4-byte load of a 3-byte pixel stays inside the row */
} axis;

struct bn_resampler {
    bn_resample_plan p;
    axis h, v;
    int rows_first;
    int y;          /* next input row */
    int vnext;      /* first output row whose inputs have not all gone by */
    size_t out_row; /* win_w * bands */
    uint8_t *row;   /* one horizontally resampled row */
    uint8_t *out;   /* output rows, when the vertical axis is an identity */
    int32_t *acc;   /* vertical sums: win_h rows of out_row (rows first) or of
                     * (h.hi - h.lo) * bands (vertical first) */
    size_t acc_row;
    const bn_resample_kernels *kern; /* NULL: the scalar loops below */
};

static double triangle(double x) {
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* (Twice is harmless: axis_init frees what it got when it fails, and
 * bn_resampler_free frees both axes after that.) */
static void axis_free(axis *a) {
    free(a->start);
    free(a->count);
    free(a->k);
    a->start = a->count = NULL;
    a->k = NULL;
}

/* PIL's precompute_coeffs and normalize_coeffs_8bpc for a BILINEAR filter
 * (support 1), outputs first .. first + n - 1 of out. */
static int axis_init(axis *a, int in, int out, int first, int n) {
    memset(a, 0, sizeof *a);
    a->n = n;
    if (in == out) {
        a->identity = 1;
        a->lo = first;
        a->hi = first + n;
        return 0;
    }
    double scale = (double)in / out, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale, ss = 1.0 / filterscale;
    a->ksize = (int)ceil(support) * 2 + 1;
    a->start = malloc(sizeof *a->start * (size_t)n);
    a->count = malloc(sizeof *a->count * (size_t)n);
    a->k = malloc(sizeof *a->k * (size_t)n * (size_t)a->ksize);
    double *w = malloc(sizeof *w * (size_t)a->ksize);
    if (!a->start || !a->count || !a->k || !w) {
        free(w);
        axis_free(a);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double center = (first + i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0)
            xmin = 0;
        if (xmax > in)
            xmax = in;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = a->k + (size_t)i * a->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        a->start[i] = xmin;
        a->count[i] = xmax;
        if (i == 0)
            a->lo = xmin;
        a->hi = xmin + xmax;
    }
    free(w);
    /* Both ends of the inputs only grow with the output: from the last on,
     * the outputs that read the last input pixel. */
    a->nsafe = n;
    while (a->nsafe > 0 && a->start[a->nsafe - 1] + a->count[a->nsafe - 1] >= a->hi)
        a->nsafe--;
    return 0;
}

/* One horizontal pass over a row whose first pixel is input column in0:
 * outputs i0 .. a->n - 1, of B samples each, into out. B is a constant after
 * inlining, so the taps loop keeps its B sums in registers (3x faster than a
 * run-time B). */
static inline __attribute__((always_inline)) void hpass_b(const axis *a, const uint8_t *in, int in0,
                                                          const int B, int i0, uint8_t *out) {
    for (int i = i0; i < a->n; i++) {
        const uint8_t *src = in + (size_t)(a->start[i] - in0) * B;
        const int32_t *k = a->k + (size_t)i * a->ksize;
        int32_t ss[4] = {HALF, HALF, HALF, HALF};
        for (int t = 0; t < a->count[i]; t++)
            for (int c = 0; c < B; c++)
                ss[c] += src[t * B + c] * k[t];
        for (int c = 0; c < B; c++)
            out[(size_t)i * B + c] = clip8(ss[c]);
    }
}

static void hpass(const bn_resampler *r, const axis *a, const uint8_t *in, int in0, int bands,
                  uint8_t *out) {
    int i0 = 0;
    if (a->identity) {
        memcpy(out, in + (size_t)(a->lo - in0) * bands, (size_t)a->n * bands);
        return;
    }
    if (r->kern && (bands == 3 || bands == 4)) {
        i0 = bands == 4 ? a->n : a->nsafe;
        r->kern->hpass(a->start, a->count, a->k, a->ksize, i0, in, in0, bands, out);
    }
    if (bands == 3)
        hpass_b(a, in, in0, 3, i0, out);
    else if (bands == 1)
        hpass_b(a, in, in0, 1, i0, out);
    else
        hpass_b(a, in, in0, bands, i0, out);
}

/* Input row y (m samples) into the vertical sums of every output row that
 * reads it. Rows arrive in order and both ends of an output's input range
 * only grow with the output, so the outputs concerned are a sliding range. */
static void vaccumulate(bn_resampler *r, int y, const uint8_t *src, size_t m) {
    const axis *a = &r->v;
    while (r->vnext < a->n && a->start[r->vnext] + a->count[r->vnext] <= y)
        r->vnext++;
    for (int i = r->vnext; i < a->n && a->start[i] <= y; i++) {
        int32_t k = a->k[(size_t)i * a->ksize + (size_t)(y - a->start[i])];
        int32_t *acc = r->acc + (size_t)i * r->acc_row;
        if (r->kern)
            r->kern->vacc(acc, src, m, k);
        else
            for (size_t j = 0; j < m; j++)
                acc[j] += src[j] * k;
    }
}

static const bn_resample_kernels *resample_kernels(bn_resample_isa isa) {
    if (isa == BN_RESAMPLE_AVX512)
        return bn_resample_simd_avx512();
    if (isa == BN_RESAMPLE_AVX2)
        return bn_resample_simd_avx2();
    return NULL;
}

int bn_resample_isa_available(bn_resample_isa isa) {
    const bn_cpu_features *f = bn_cpu_features_get();
    switch (isa) {
    case BN_RESAMPLE_AUTO:
    case BN_RESAMPLE_SCALAR: return 1;
    case BN_RESAMPLE_AVX2: return f->avx2_fma && resample_kernels(isa) != NULL;
    case BN_RESAMPLE_AVX512: return f->avx512 && resample_kernels(isa) != NULL;
    }
    return 0;
}

bn_resample_isa bn_resample_isa_auto(void) {
    return bn_resample_isa_available(BN_RESAMPLE_AVX512) ? BN_RESAMPLE_AVX512
           : bn_resample_isa_available(BN_RESAMPLE_AVX2) ? BN_RESAMPLE_AVX2
                                                         : BN_RESAMPLE_SCALAR;
}

const char *bn_resample_isa_name(bn_resample_isa isa) {
    if (isa == BN_RESAMPLE_AUTO)
        isa = bn_resample_isa_auto();
    return isa == BN_RESAMPLE_AVX512 ? "avx512" : isa == BN_RESAMPLE_AVX2 ? "avx2" : "scalar";
}

int bn_resampler_new(const bn_resample_plan *plan, const char *name, bn_resampler **out,
                     bn_error *err) {
    const bn_resample_plan *p = plan;
    *out = NULL;
    if (!name)
        name = "(image)";
    if (p->width < 1 || p->height < 1 || p->width > BN_RESAMPLE_MAX_SIDE ||
        p->height > BN_RESAMPLE_MAX_SIDE)
        return bn_fail(err, BN_EINVAL, "%s: %dx%d image: each side must be 1 to %d pixels", name,
                       p->width, p->height, BN_RESAMPLE_MAX_SIDE);
    if (p->bands < 1 || p->bands > 4)
        return bn_fail(err, BN_EINVAL, "%s: %d bands per pixel (1 to 4 supported)", name, p->bands);
    if (p->out_width < 1 || p->out_height < 1 || p->win_w < 1 || p->win_h < 1 || p->win_x < 0 ||
        p->win_y < 0 || p->win_x > p->out_width - p->win_w || p->win_y > p->out_height - p->win_h)
        return bn_fail(err, BN_EINVAL, "%s: resize to %dx%d, window %dx%d at %d,%d: out of range",
                       name, p->out_width, p->out_height, p->win_w, p->win_h, p->win_x, p->win_y);
    if (p->isa < BN_RESAMPLE_AUTO || p->isa > BN_RESAMPLE_AVX512 ||
        !bn_resample_isa_available((bn_resample_isa)p->isa))
        return bn_fail(err, BN_EINVAL, "%s: resampler instruction set %d: not on this CPU", name,
                       p->isa);

    bn_resampler *r = calloc(1, sizeof *r);
    if (!r)
        return bn_fail(err, BN_ENOMEM, "%s: out of memory for the resampler", name);
    r->p = *p;
    r->kern = resample_kernels(p->isa == BN_RESAMPLE_AUTO ? bn_resample_isa_auto()
                                                          : (bn_resample_isa)p->isa);
    if (axis_init(&r->h, p->width, p->out_width, p->win_x, p->win_w) ||
        axis_init(&r->v, p->height, p->out_height, p->win_y, p->win_h))
        goto nomem;
    r->out_row = (size_t)p->win_w * p->bands;
    r->rows_first = p->rows_first;
    size_t cols = (size_t)(r->h.hi - r->h.lo) * p->bands;
    if (!r->rows_first && cols * sizeof(int32_t) * p->win_h > RESAMPLE_MAX_ACC)
        r->rows_first = 1;
    if (r->v.identity) {
        /* No vertical pass: output rows are horizontally resampled input
         * rows, and the order of the passes does not matter. */
        if (!(r->out = malloc(r->out_row * p->win_h)))
            goto nomem;
    } else {
        r->acc_row = r->rows_first ? r->out_row : cols;
        size_t n = r->acc_row * p->win_h;
        if (!(r->acc = malloc(sizeof *r->acc * n)))
            goto nomem;
        for (size_t j = 0; j < n; j++)
            r->acc[j] = HALF;
        size_t rowlen = r->rows_first ? r->out_row : cols;
        if (!(r->row = malloc(rowlen)))
            goto nomem;
    }
    *out = r;
    return BN_OK;
nomem:
    bn_resampler_free(r);
    return bn_fail(err, BN_ENOMEM, "%s: out of memory for the resampler", name);
}

void bn_resampler_push(bn_resampler *r, const uint8_t *row) {
    int y = r->y++;
    if (y < r->v.lo || y >= r->v.hi)
        return;
    if (r->v.identity)
        hpass(r, &r->h, row, 0, r->p.bands, r->out + (size_t)(y - r->v.lo) * r->out_row);
    else if (r->rows_first) {
        hpass(r, &r->h, row, 0, r->p.bands, r->row);
        vaccumulate(r, y, r->row, r->out_row);
    } else
        vaccumulate(r, y, row + (size_t)r->h.lo * r->p.bands, r->acc_row);
}

static void clip(const bn_resampler *r, uint8_t *out, const int32_t *acc, size_t m) {
    if (r->kern)
        r->kern->clip(out, acc, m);
    else
        for (size_t j = 0; j < m; j++)
            out[j] = clip8(acc[j]);
}

void bn_resampler_finish(bn_resampler *r, uint8_t *out) {
    size_t rows = (size_t)r->p.win_h;
    if (r->v.identity) {
        memcpy(out, r->out, r->out_row * rows);
    } else if (r->rows_first) {
        clip(r, out, r->acc, r->out_row * rows);
    } else {
        /* The vertical pass's 8-bit rows, then the horizontal pass. */
        for (size_t i = 0; i < rows; i++) {
            clip(r, r->row, r->acc + i * r->acc_row, r->acc_row);
            hpass(r, &r->h, r->row, r->h.lo, r->p.bands, out + i * r->out_row);
        }
    }
}

void bn_resampler_free(bn_resampler *r) {
    if (!r)
        return;
    axis_free(&r->h);
    axis_free(&r->v);
    free(r->row);
    free(r->out);
    free(r->acc);
    free(r);
}
