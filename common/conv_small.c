/*
 * conv_small.c: direct 3x3 convolution for few input channels (BN_CONV_SMALL).
 *
 * Owns the engine that AUTO picks (conv.c, conv_resolve) for 3x3 layers with
 * cin <= 4 on CPUs with AVX-512 or AVX2: VGG16's block1_conv1 (224x224x3 -> 64).
 * Exports only its ops table, bn_conv_small_ops (conv_internal.h).
 *
 * Why not Winograd there: with cin = 3 padded to 16 the Winograd engine's
 * transforms and its k = 3 products cost more than the 27 multiply-adds per
 * output channel that the definition asks for (0.17 GFLOP per 224x224 image),
 * and the layer is bound by writing its 12.8 MB output anyway. So this engine
 * does every multiplication, like the exact one, in a register-blocked loop:
 *
 *   in   (n, h, w, cin)         NHWC, cin 1..4
 *   pad  (3, w + SM_PX + 2, cin) per thread: the three input rows around one
 *                               output row, zeros off the image, so the
 *                               inner loop never tests an edge
 *   wt   (coutp/64, 9*cin, 64)  the kernel, 64 output channels (4 vectors)
 *                               per group, taps (ky, kx, ci) in Keras order;
 *                               27 x 64 floats (7 KB) for VGG16: stays in L1
 *   out  (n, h, w, cout)        = relu(bias + sum over taps in tap order)
 *
 * The kernel: SM_PX pixels of a row x up to 4 vectors of 16 output channels
 * in 24 zmm accumulators, each starting from the bias; for each tap the 4
 * weight vectors are loaded once and each pixel's input value is broadcast
 * into 4 FMAs (AVX2, small_row_group8: 6 pixels x 2 vectors of 8, for each
 * 16 channels in turn). Then ReLU and the store: non-temporal (past the caches) when
 * the output is much larger than the last-level cache, as wg_stream in
 * conv_winograd.c, since a normal store reads every line before writing it.
 *
 * Determinism: every output value is the same chain of FMAs (bias, then the
 * taps in order, zeros for taps off the image) wherever its pixel is, in
 * whatever batch, on whatever thread: results are identical bit for bit.
 * They differ from the exact engine's (OpenBLAS' summation order) in the last
 * bits only (tests/test_conv_small.c: rel L2 <= 1e-6).
 *
 * Fused 2x2 max pool (bn_conv_forward_pool): both output rows of a pooled
 * row go to a per-thread scratch, then are pooled; max and ReLU commute, so
 * the values equal forward + bn_conv_maxpool2x2 exactly.
 *
 * Threads: the pool's (pool.h); tasks are SM_ROWS_PER_TASK output rows (or
 * pooled rows) of one image, taken by whichever thread is free.
 *
 * Precision: FP32 in every precision asked for (bn_conv_create_precision
 * records FP32): BF16 would halve nothing that matters here.
 */
#include "conv_internal.h"
#include "cpu.h"
#include "pool.h"

#include <assert.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Pixels of a row per kernel call: 6 x 4 accumulators + 4 weight vectors + 1
 * broadcast = 29 of the 32 zmm registers. */
#define SM_PX 6
/* Output channels per group: four vectors of 16. */
#define SM_GROUP 64
/* Output rows (pooled rows with the pool) per task. */
#define SM_ROWS_PER_TASK 4
/* Outputs larger than this are written with non-temporal stores (the
 * Winograd engine's WG_STREAM_BYTES: far above the last-level cache share
 * that the next layer could still read back). */
#define SM_STREAM_BYTES ((size_t)32 << 20)

#define SM_INLINE static inline __attribute__((always_inline))
#define SM_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define SM_AVX2 __attribute__((target("avx2,fma")))
/* AVX2 (16 ymm): pixels per call for one vector pair (16 channels): 6 x 2
 * accumulators + 2 weight vectors + 1 broadcast = 15 registers. */
#define SM_PX8 6

/* The kernel rearranged, and the threads the workspace was sized for. */
typedef struct {
    float *wt; /* (groups, 9*cin, 64), channels past cout zero */
    int groups, threads;
} small_packed;

static int small_prepare(bn_conv *c, const float *kernel, bn_error *err) {
    const int cin = c->cin, cout = c->cout, taps = 9 * cin;
    if (cin > 4 || bn_conv_winograd_isa() == BN_WINOGRAD_PORTABLE)
        return bn_fail(err, BN_EINVAL, "conv_small: needs cin <= 4 (got %d) and AVX2 or AVX-512",
                       cin);
    small_packed *p = malloc(sizeof *p);
    int groups = (cout + SM_GROUP - 1) / SM_GROUP;
    float *wt = aligned_alloc(64, (size_t)groups * taps * SM_GROUP * sizeof(float));
    if (!p || !wt) {
        free(p);
        free(wt);
        return bn_fail(err, BN_ENOMEM, "conv_small: out of memory for a %dx%d kernel", cin, cout);
    }
    /* kernel (3,3,cin,cout) = (taps, cout) row-major -> (groups, taps, 64) */
    for (int g = 0; g < groups; g++)
        for (int t = 0; t < taps; t++)
            for (int j = 0; j < SM_GROUP; j++) {
                int co = g * SM_GROUP + j;
                wt[((size_t)g * taps + t) * SM_GROUP + j] =
                    co < cout ? kernel[(size_t)t * cout + co] : 0.0f;
            }
    p->wt = wt;
    p->groups = groups;
    p->threads = bn_cpu_threads();
    if (p->threads > BN_POOL_MAX_THREADS)
        p->threads = BN_POOL_MAX_THREADS;
    /* If a thread cannot start, the pool keeps those it has: slower, not wrong. */
    (void)bn_pool_acquire(p->threads);
    c->packed = p;
    return BN_OK;
}

/* Floats of one padded row: w pixels, one zero pixel each side, and SM_PX
 * more zeros so that the last kernel call may read past w. */
static size_t small_pad_row(const bn_conv *c, int w) {
    return (size_t)(w + SM_PX + 2) * c->cin;
}

/* One thread's scratch: the three padded rows, and two full output rows for
 * the fused pool; a multiple of 64 bytes. */
static size_t small_thread_bytes(const bn_conv *c, int w, int pool) {
    size_t f = 3 * small_pad_row(c, w) + (pool ? (size_t)2 * w * c->cout : 0);
    return (f * sizeof(float) + 63) & ~(size_t)63;
}

static size_t small_workspace_for(const bn_conv *c, int n, int h, int w, int pool) {
    if (n <= 0 || h <= 0 || w <= 0)
        return 0;
    const small_packed *p = c->packed;
    return small_thread_bytes(c, w, pool) * (size_t)p->threads;
}

static size_t small_workspace(const bn_conv *c, int n, int h, int w) {
    return small_workspace_for(c, n, h, w, 0);
}

static size_t small_workspace_pool(const bn_conv *c, int n, int h, int w) {
    return small_workspace_for(c, n, h, w, 1);
}

/* What the threads of one forward call share. */
typedef struct {
    const bn_conv *c;
    const float *in;
    float *out;
    int n, h, w;
    int pool;   /* out is (n, h/2, w/2, cout) */
    int stream; /* non-temporal stores to out */
    unsigned rows_per_image, tasks_per_image;
    char *workspace;
    size_t ws_thread;
    bn_pool_queue q;
} small_job;

/* pad (3, w + SM_PX + 2, cin) = rows y-1, y, y+1 of image img, zero-padded. */
static void small_pad(const small_job *j, float *pad, size_t img, int y) {
    const int h = j->h, w = j->w, cin = j->c->cin;
    const size_t row = small_pad_row(j->c, w);
    for (int ky = 0; ky < 3; ky++) {
        float *d = pad + ky * row;
        int yy = y + ky - 1;
        if (yy < 0 || yy >= h) {
            memset(d, 0, row * sizeof *d);
            continue;
        }
        memset(d, 0, (size_t)cin * sizeof *d);
        memcpy(d + cin, j->in + ((img * h + yy) * w) * cin, (size_t)w * cin * sizeof *d);
        memset(d + (size_t)(w + 1) * cin, 0, (size_t)(SM_PX + 1) * cin * sizeof *d);
    }
}

/* Store one vector of 16 channels of a pixel: all of them, or the first
 * `left` (< 16) of the last group; streamed past the caches if asked
 * (then dst is 64-byte aligned and left is 16). */
SM_INLINE SM_AVX512 void small_store(float *dst, __m512 v, int left, int stream) {
    if (stream)
        _mm512_stream_ps(dst, v);
    else if (left >= 16)
        _mm512_storeu_ps(dst, v);
    else
        _mm512_mask_storeu_ps(dst, (__mmask16)((1u << left) - 1), v);
}

/* out row (w, cout) for output channels [g*64, g*64 + nv*16), the part of
 * them below cout: pixels in calls of SM_PX, each accumulator
 * acc[pixel][vector] = bias, then + in * weight for the taps in order.
 * CIN and NV are constants at each call site (small_row), so the tap loop
 * unrolls and the accumulators live in registers. */
SM_INLINE SM_AVX512 void small_row_group(const float *pad, size_t prow, const float *wt,
                                         const float *bias, float *out, int w, int cout, int g,
                                         int stream, const int CIN, const int NV) {
    const int taps = 9 * CIN, c0 = g * SM_GROUP;
    __m512 b[4];
    for (int v = 0; v < NV; v++) {
        int left = cout - (c0 + 16 * v);
        b[v] = left >= 16
                   ? _mm512_loadu_ps(bias + c0 + 16 * v)
                   : _mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1), bias + c0 + 16 * v);
    }
    const float *wg = wt + (size_t)g * taps * SM_GROUP;
    for (int x0 = 0; x0 < w; x0 += SM_PX) {
        __m512 acc[SM_PX][4];
        /* (the unrolls keep acc in registers at -O2 too, the default
         * build's; -O3 unrolls these loops by itself) */
#pragma GCC unroll 8
        for (int px = 0; px < SM_PX; px++)
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[px][v] = b[v];
        for (int ky = 0; ky < 3; ky++) {
            const float *r = pad + ky * prow + (size_t)x0 * CIN;
            for (int t = 0; t < 3 * CIN; t++) { /* (kx, ci): the pixel x0 + kx - 1 + px */
                const float *wk = wg + (size_t)(ky * 3 * CIN + t) * SM_GROUP;
                __m512 wv[4];
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    wv[v] = _mm512_load_ps(wk + 16 * v);
#pragma GCC unroll 8
                for (int px = 0; px < SM_PX; px++) {
                    __m512 s = _mm512_set1_ps(r[px * CIN + t]);
#pragma GCC unroll 4
                    for (int v = 0; v < NV; v++)
                        acc[px][v] = _mm512_fmadd_ps(s, wv[v], acc[px][v]);
                }
            }
        }
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int px = 0; px < SM_PX; px++) {
            if (x0 + px >= w) /* the row's last call: fewer pixels */
                break;
            float *o = out + (size_t)(x0 + px) * cout + c0;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                small_store(o + 16 * v, _mm512_max_ps(acc[px][v], zero), cout - (c0 + 16 * v),
                            stream);
        }
    }
}

/* The lanes of an 8-float vector below `left` (all of them from 8 up). */
SM_INLINE SM_AVX2 __m256i small_lanes8(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* small_row_group with AVX2: the same chain of FMAs for every output (bias,
 * then the taps in order), so the same bytes, computed 16 channels (two ymm)
 * by SM_PX8 pixels at a time. */
SM_INLINE SM_AVX2 void small_row_group8(const float *pad, size_t prow, const float *wt,
                                        const float *bias, float *out, int w, int cout, int g,
                                        int stream, const int CIN, const int NV) {
    const int taps = 9 * CIN;
    const float *wg = wt + (size_t)g * taps * SM_GROUP;
    for (int v = 0; v < NV; v++) {
        const int c0 = g * SM_GROUP + 16 * v, left = cout - c0;
        __m256 b[2];
        for (int h = 0; h < 2; h++) /* the lanes of this half below cout */
            b[h] = _mm256_maskload_ps(bias + c0 + 8 * h, small_lanes8(left - 8 * h));
        for (int x0 = 0; x0 < w; x0 += SM_PX8) {
            __m256 acc[SM_PX8][2]; /* (unrolled as in small_row_group) */
#pragma GCC unroll 8
            for (int px = 0; px < SM_PX8; px++)
                acc[px][0] = b[0], acc[px][1] = b[1];
            for (int ky = 0; ky < 3; ky++) {
                const float *r = pad + ky * prow + (size_t)x0 * CIN;
                for (int t = 0; t < 3 * CIN; t++) {
                    const float *wk = wg + (size_t)(ky * 3 * CIN + t) * SM_GROUP + 16 * v;
                    const __m256 w0 = _mm256_load_ps(wk), w1 = _mm256_load_ps(wk + 8);
#pragma GCC unroll 8
                    for (int px = 0; px < SM_PX8; px++) {
                        __m256 s = _mm256_broadcast_ss(r + px * CIN + t);
                        acc[px][0] = _mm256_fmadd_ps(s, w0, acc[px][0]);
                        acc[px][1] = _mm256_fmadd_ps(s, w1, acc[px][1]);
                    }
                }
            }
            const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 8
            for (int px = 0; px < SM_PX8; px++) {
                if (x0 + px >= w)
                    break;
                float *o = out + (size_t)(x0 + px) * cout + c0;
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m256 y = _mm256_max_ps(acc[px][h], zero);
                    const int l = left - 8 * h;
                    if (stream)
                        _mm256_stream_ps(o + 8 * h, y);
                    else if (l >= 8)
                        _mm256_storeu_ps(o + 8 * h, y);
                    else if (l > 0)
                        _mm256_maskstore_ps(o + 8 * h, small_lanes8(l), y);
                }
            }
        }
    }
}

/* The vectors of group g: 4, or fewer in the last group. */
SM_INLINE int small_vectors(int cout, int g) {
    int left = cout - g * SM_GROUP;
    return left >= SM_GROUP ? 4 : (left + 15) / 16;
}

/* Dispatch on (cin, vectors) so that small_row_group sees constants. */
#define SM_CASE(FN, CIN, NV)                                                                       \
    case (CIN)*8 + (NV):                                                                           \
        FN(pad, prow, wt, bias, out, w, cout, g, stream, CIN, NV);                                 \
        break;
#define SM_CASES(FN, CIN)                                                                          \
    SM_CASE(FN, CIN, 1) SM_CASE(FN, CIN, 2) SM_CASE(FN, CIN, 3) SM_CASE(FN, CIN, 4)

/* out (w, cout): one output row from its padded input rows, all groups. */
static SM_AVX512 void small_row(const small_packed *p, const float *pad, size_t prow,
                                const float *bias, float *out, int w, int cin, int cout,
                                int stream) {
    const float *wt = p->wt;
    for (int g = 0; g < p->groups; g++) {
        switch (cin * 8 + small_vectors(cout, g)) {
            SM_CASES(small_row_group, 1)
            SM_CASES(small_row_group, 2)
            SM_CASES(small_row_group, 3)
            SM_CASES(small_row_group, 4)
        default: assert(0);
        }
    }
}

static SM_AVX2 void small_row8(const small_packed *p, const float *pad, size_t prow,
                               const float *bias, float *out, int w, int cin, int cout,
                               int stream) {
    const float *wt = p->wt;
    for (int g = 0; g < p->groups; g++) {
        switch (cin * 8 + small_vectors(cout, g)) {
            SM_CASES(small_row_group8, 1)
            SM_CASES(small_row_group8, 2)
            SM_CASES(small_row_group8, 3)
            SM_CASES(small_row_group8, 4)
        default: assert(0);
        }
    }
}

/* rows (2, w, cout) -> out (w/2, cout): the 2x2 max of each pooled pixel. */
SM_INLINE void small_pool_row(const float *rows, float *out, int w, int cout) {
    const float *r0 = rows, *r1 = rows + (size_t)w * cout;
    for (int x = 0; x < w / 2; x++) {
        const float *a = r0 + (size_t)2 * x * cout, *b = r1 + (size_t)2 * x * cout;
        float *o = out + (size_t)x * cout;
        for (int k = 0; k < cout; k++) {
            float m0 = a[k] > a[k + cout] ? a[k] : a[k + cout];
            float m1 = b[k] > b[k + cout] ? b[k] : b[k + cout];
            o[k] = m0 > m1 ? m0 : m1;
        }
    }
}

typedef void small_row_fn(const small_packed *p, const float *pad, size_t prow, const float *bias,
                          float *out, int w, int cin, int cout, int stream);

/* One thread's share: tasks of SM_ROWS_PER_TASK rows of one image. */
SM_INLINE void small_work(small_job *j, int tid, small_row_fn *small_row) {
    const bn_conv *c = j->c;
    const small_packed *p = c->packed;
    const int h = j->h, w = j->w, cin = c->cin, cout = c->cout;
    const size_t prow = small_pad_row(c, w);
    float *pad = (float *)(j->workspace + (size_t)tid * j->ws_thread);
    float *full = pad + 3 * prow; /* (2, w, cout): the fused pool's two rows */
    const unsigned end = j->tasks_per_image * (unsigned)j->n;
    for (unsigned task; bn_pool_take(&j->q, end, &task);) {
        size_t img = task / j->tasks_per_image;
        unsigned r0 = task % j->tasks_per_image * SM_ROWS_PER_TASK;
        unsigned r1 =
            r0 + SM_ROWS_PER_TASK < j->rows_per_image ? r0 + SM_ROWS_PER_TASK : j->rows_per_image;
        for (unsigned r = r0; r < r1; r++) {
            if (!j->pool) {
                small_pad(j, pad, img, (int)r);
                small_row(p, pad, prow, c->bias, j->out + (img * h + r) * w * cout, w, cin, cout,
                          j->stream);
                continue;
            }
            for (int k = 0; k < 2; k++) {
                small_pad(j, pad, img, 2 * (int)r + k);
                small_row(p, pad, prow, c->bias, full + (size_t)k * w * cout, w, cin, cout, 0);
            }
            small_pool_row(full, j->out + (img * (h / 2) + r) * (w / 2) * cout, w, cout);
        }
        bn_pool_finish(&j->q, end);
    }
    if (j->stream) /* the streamed lines visible before the caller reads them */
        _mm_sfence();
}

static SM_AVX512 void small_work_avx512(void *arg, int tid, int nth) {
    (void)nth;
    small_work(arg, tid, small_row);
}

static SM_AVX2 void small_work_avx2(void *arg, int tid, int nth) {
    (void)nth;
    small_work(arg, tid, small_row8);
}

static void small_run(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                      void *workspace, int pool) {
    const small_packed *p = c->packed;
    small_job j = {.c = c, .in = in, .out = out, .n = n, .h = h, .w = w, .pool = pool};
    j.rows_per_image = (unsigned)(pool ? h / 2 : h);
    j.tasks_per_image = (j.rows_per_image + SM_ROWS_PER_TASK - 1) / SM_ROWS_PER_TASK;
    j.workspace = workspace;
    j.ws_thread = small_thread_bytes(c, w, pool);
    size_t out_bytes = (size_t)n * j.rows_per_image * (pool ? w / 2 : w) * c->cout * sizeof(float);
    j.stream =
        !pool && out_bytes > SM_STREAM_BYTES && c->cout % 16 == 0 && ((uintptr_t)out & 63) == 0;
    int all = bn_cpu_threads();
    int nth = all < p->threads ? all : p->threads; /* the workspace holds p->threads shares */
    bn_pool_run(bn_conv_winograd_isa() == BN_WINOGRAD_AVX512 ? small_work_avx512 : small_work_avx2,
                &j, nth);
}

/* in (n, h, w, cin) -> out (n, h, w, cout) = relu(conv3x3_same(in) + bias). */
static void small_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                          void *workspace) {
    small_run(c, in, out, n, h, w, workspace, 0);
}

/* in (n, h, w, cin) -> out (n, h/2, w/2, cout), h and w even. */
static void small_forward_pool(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                               void *workspace) {
    small_run(c, in, out, n, h, w, workspace, 1);
}

static void small_release(bn_conv *c) {
    small_packed *p = c->packed;
    bn_conv_release_pooled(c, p ? p->wt : NULL);
}

const bn_conv_ops bn_conv_small_ops = {
    .prepare = small_prepare,
    .workspace = small_workspace,
    .forward = small_forward,
    .release = small_release,
    .workspace_pool = small_workspace_pool,
    .forward_pool = small_forward_pool,
};
