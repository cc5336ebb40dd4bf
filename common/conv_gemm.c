/*
 * conv_gemm.c: the general convolution engine (conv.h, bn_conv_gemm_*).
 *
 * Every convolution the Winograd engine does not take: any kernel (1x1, 5x5,
 * 7x7, ...), stride, padding (asymmetric too), dilation and group count, on
 * NHWC float32, with bias and an optional ReLU. Three paths:
 *
 *   1x1, stride 1, no pads   C (h*w, cout_g) = in (h*w, cin_g) x K (cin_g, cout_g)
 *                            per group: the image IS the matrix (lda = cin), no copy
 *   depthwise                group == cin == cout: one loop over taps, channels
 *                            innermost (contiguous in NHWC and in the kernel)
 *   anything else            im2col of a chunk of output pixels, (rows, kh*kw*cin_g),
 *                            columns ordered (ky, kx, ci), zeros off the image,
 *                            then one sgemm per group
 *
 * The kernel keeps Keras' layout (kh, kw, cin/group, cout), which read
 * row-major is already the (kh*kw*cin_g, cout) matrix B; group g uses columns
 * [g*cout_g, (g+1)*cout_g) of it (ldb = cout), and writes the same columns of
 * the output (ldc = cout). So preparing the weights is a copy.
 *
 * Threads and determinism: the work is cut into tasks of (image, chunk of
 * output pixels), the chunk's size a function of the layer and the image
 * size only; each task is one single-threaded sgemm (OpenBLAS rounds a row
 * differently with the matrix shape and with its own thread count), and the
 * tasks are shared among the pool's threads (pool.h), as conv_direct.c does.
 * So a vector depends neither on the batch it was computed in nor on the
 * thread count.
 *
 * --precision amx (bn_conv_gemm_create_precision): the 1x1 and im2col paths
 * multiply on AMX tiles instead (amx.h): each task's A rounded to bfloat16
 * (vcvtneps2bf16) into a copy padded to whole tiles (rows to 32, k to 32,
 * zeros), B rounded once at creation into tdpbf16ps' layout, FP32 sums,
 * the valid rows and columns copied out, then bias and ReLU as in FP32.
 * Rows do not mix and a task's shape depends on the layer alone, so the
 * same guarantee holds. Depthwise stays FP32 (no GEMM in it).
 */
#include "amx.h"
#include "conv.h"
#include "cpu.h"
#include "f16.h"
#include "pool.h"

#include <immintrin.h>

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Output pixels per task: enough for an efficient sgemm, few enough that
 * one image gives each thread work; and the im2col chunk of one task at
 * most GEMM_CHUNK_BYTES (it stays in L2 while the sgemm reads it). */
#define GEMM_CHUNK_ROWS 256
#define GEMM_CHUNK_BYTES ((size_t)1 << 20)

struct bn_conv_gemm {
    bn_conv_geom g;
    int cin_g, cout_g, k; /* per group: input and output channels, kh*kw*cin_g */
    int path;             /* GEMM_1X1, GEMM_DEPTHWISE, GEMM_IM2COL */
    int threads;          /* the pool's threads counted at creation (workspace per thread) */
    float *kernel;        /* (kh, kw, cin_g, cout) */
    float *bias;          /* (cout) */
    int amx;              /* products on AMX tiles (--precision amx) */
    int kp, np;           /* AMX: k and cout_g rounded up to 32 */
    uint16_t *kb;         /* AMX: B per group, [group][np/16][kp/2][16][2] bfloat16 */
};

/* AMX: rows of a task rounded up to whole groups (amx.h). */
#define GEMM_AMX_ROWS BN_AMX_ROWS

enum { GEMM_1X1, GEMM_DEPTHWISE, GEMM_IM2COL };

void bn_conv_gemm_out_size(const bn_conv_geom *g, int h, int w, int *oh, int *ow) {
    long eh = (long)g->dh * (g->kh - 1) + 1, ew = (long)g->dw * (g->kw - 1) + 1;
    long ph = (long)h + g->pt + g->pb, pw = (long)w + g->pl + g->pr;
    *oh = ph >= eh && g->sh > 0 ? (int)((ph - eh) / g->sh + 1) : 0;
    *ow = pw >= ew && g->sw > 0 ? (int)((pw - ew) / g->sw + 1) : 0;
}

/* B of every group in tdpbf16ps' layout: for each 16 output columns, the
 * k rows as pairs, each pair's 16 columns x 2 side by side; zeros past k
 * and past cout_g. */
static int gemm_pack_amx(bn_conv_gemm *c) {
    const int cout = c->g.cout, nb = c->np / 16, pairs = c->kp / 2;
    size_t count = (size_t)c->g.group * nb * pairs * 32;
    c->kb = aligned_alloc(64, (count * sizeof(uint16_t) + 63) & ~(size_t)63);
    if (!c->kb)
        return BN_ENOMEM;
    for (int gi = 0; gi < c->g.group; gi++)
        for (int b = 0; b < nb; b++)
            for (int pr = 0; pr < pairs; pr++)
                for (int col = 0; col < 16; col++)
                    for (int h = 0; h < 2; h++) {
                        int kk = 2 * pr + h, co = b * 16 + col;
                        float v = kk < c->k && co < c->cout_g
                                      ? c->kernel[(size_t)kk * cout + (size_t)gi * c->cout_g + co]
                                      : 0.0f;
                        c->kb[(((size_t)gi * nb + b) * pairs + pr) * 32 + col * 2 + h] =
                            bn_f32_to_bf16(v);
                    }
    return BN_OK;
}

int bn_conv_gemm_create(bn_conv_gemm **out, const bn_conv_geom *g, const float *kernel,
                        const float *bias, bn_error *err) {
    return bn_conv_gemm_create_precision(out, g, kernel, bias, BN_PRECISION_FP32, err);
}

int bn_conv_gemm_uses_amx(const bn_conv_gemm *c) {
    return c->amx;
}

int bn_conv_gemm_create_precision(bn_conv_gemm **out, const bn_conv_geom *g, const float *kernel,
                                  const float *bias, bn_precision precision, bn_error *err) {
    *out = NULL;
    if (g->cin <= 0 || g->cout <= 0 || g->group <= 0 || g->cin % g->group || g->cout % g->group ||
        g->kh <= 0 || g->kw <= 0 || g->kh > 1024 || g->kw > 1024 || g->sh <= 0 || g->sw <= 0 ||
        g->dh <= 0 || g->dw <= 0 || g->pt < 0 || g->pl < 0 || g->pb < 0 || g->pr < 0 ||
        g->pt > 4096 || g->pl > 4096 || g->pb > 4096 || g->pr > 4096 || !kernel)
        return bn_fail(err, BN_EINVAL,
                       "conv: not a convolution (cin %d, cout %d, kernel %dx%d, stride %dx%d, "
                       "group %d)",
                       g->cin, g->cout, g->kh, g->kw, g->sh, g->sw, g->group);
    bn_conv_gemm *c = calloc(1, sizeof *c);
    if (!c)
        return bn_fail(err, BN_ENOMEM, "conv: out of memory");
    c->g = *g;
    c->cin_g = g->cin / g->group;
    c->cout_g = g->cout / g->group;
    c->k = g->kh * g->kw * c->cin_g;
    if (g->group == g->cin && g->group == g->cout && g->group > 1)
        c->path = GEMM_DEPTHWISE;
    else if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pl && !g->pb &&
             !g->pr)
        c->path = GEMM_1X1;
    else
        c->path = GEMM_IM2COL;
    size_t nk = (size_t)c->k * g->cout;
    c->kernel = malloc(nk * sizeof(float));
    c->bias = calloc((size_t)g->cout, sizeof(float));
    if (!c->kernel || !c->bias) {
        int rc = bn_fail(err, BN_ENOMEM, "conv: out of memory for a %dx%dx%dx%d kernel", g->kh,
                         g->kw, c->cin_g, g->cout); /* (c's fields read before it is freed) */
        bn_conv_gemm_free(c);
        return rc;
    }
    memcpy(c->kernel, kernel, nk * sizeof(float));
    if (bias)
        memcpy(c->bias, bias, (size_t)g->cout * sizeof(float));
    /* AMX where it runs (the same test as the Winograd engine's) and there
     * is a GEMM to do */
    if (precision == BN_PRECISION_AMX && c->path != GEMM_DEPTHWISE &&
        bn_conv_winograd_has_precision(BN_PRECISION_AMX) && bn_cpu_features_get()->avx512_bf16) {
        c->amx = 1;
        c->kp = (c->k + 31) / 32 * 32;
        c->np = (c->cout_g + 31) / 32 * 32;
        if (gemm_pack_amx(c)) {
            bn_conv_gemm_free(c);
            return bn_fail(err, BN_ENOMEM, "conv: out of memory for a %dx%dx%dx%d BF16 kernel",
                           g->kh, g->kw, c->cin_g, g->cout);
        }
    }
    c->threads = bn_cpu_threads();
    c->threads = c->threads < 1                     ? 1
                 : c->threads > BN_POOL_MAX_THREADS ? BN_POOL_MAX_THREADS
                                                    : c->threads;
    /* If a thread cannot start, the pool keeps those it has: slower, not wrong. */
    (void)bn_pool_acquire(c->threads);
    *out = c;
    return BN_OK;
}

void bn_conv_gemm_free(bn_conv_gemm *c) {
    if (!c)
        return;
    free(c->kernel);
    free(c->bias);
    free(c->kb);
    free(c);
    bn_pool_release();
}

/* Output pixels per task: depends on the layer and image size only. */
static size_t gemm_chunk_rows(const bn_conv_gemm *c, int oh, int ow) {
    size_t cap = GEMM_CHUNK_BYTES / ((size_t)c->k * c->g.group * sizeof(float));
    size_t total = (size_t)oh * ow;
    cap = cap < 1 ? 1 : cap > GEMM_CHUNK_ROWS ? GEMM_CHUNK_ROWS : cap;
    return total < cap ? total : cap;
}

/* One task's im2col matrix, 64-byte aligned. */
static size_t gemm_im2col_bytes(const bn_conv_gemm *c, int oh, int ow) {
    if (c->path != GEMM_IM2COL)
        return 0;
    size_t bytes = gemm_chunk_rows(c, oh, ow) * (size_t)c->k * c->g.group * sizeof(float);
    return (bytes + 63) & ~(size_t)63;
}

/* AMX: one group's A in bfloat16 (whole groups of rows, kp columns), then
 * a 32 x 32 FP32 tile of C. */
static size_t gemm_amx_bytes(const bn_conv_gemm *c, int oh, int ow) {
    if (!c->amx)
        return 0;
    size_t rows = (gemm_chunk_rows(c, oh, ow) + GEMM_AMX_ROWS - 1) / GEMM_AMX_ROWS * GEMM_AMX_ROWS;
    return rows * c->kp * sizeof(uint16_t) + GEMM_AMX_ROWS * 32 * sizeof(float);
}

/* One thread's scratch: im2col, then AMX's. */
static size_t gemm_chunk_bytes(const bn_conv_gemm *c, int oh, int ow) {
    return gemm_im2col_bytes(c, oh, ow) + gemm_amx_bytes(c, oh, ow);
}

size_t bn_conv_gemm_workspace(const bn_conv_gemm *c, int h, int w) {
    int oh, ow;
    bn_conv_gemm_out_size(&c->g, h, w, &oh, &ow);
    return gemm_chunk_bytes(c, oh, ow) * (size_t)c->threads;
}

/* rows (rows, cout) += bias, then ReLU if asked: v < lo ? lo : v with lo
 * 0 (ReLU) or -inf (none), NaN and -0 kept as they are. In blocks of 16
 * with a scalar tail, bias not aliasing o, no branch on relu inside: so
 * that the default build's -O2 vectorises it too (it ran scalar there, a
 * fifth of GoogLeNet's time). */
static void gemm_bias_relu(const bn_conv_gemm *c, float *restrict o, size_t rows) {
    const int cout = c->g.cout;
    const float *restrict bias = c->bias;
    const float lo = c->g.relu ? 0.0f : -INFINITY;
    for (size_t r = 0; r < rows; r++) {
        float *restrict q = o + r * cout;
        int co = 0;
        for (; co + 16 <= cout; co += 16)
            for (int k = 0; k < 16; k++) {
                float v = q[co + k] + bias[co + k];
                q[co + k] = v < lo ? lo : v;
            }
        for (; co < cout; co++) {
            float v = q[co] + bias[co];
            q[co] = v < lo ? lo : v;
        }
    }
}

/* im2col of output pixels [r0, r0 + rows) of one image img (h, w, cin), for
 * every group: a (group, rows, k), row r of group gi holding the taps
 * (ky, kx) of channels [gi*cin_g, (gi+1)*cin_g); zeros off the image. */
static void gemm_im2col(const bn_conv_gemm *c, const float *img, float *a, size_t r0, size_t rows,
                        int h, int w, int ow) {
    const bn_conv_geom *g = &c->g;
    const int cin = g->cin, cin_g = c->cin_g, k = c->k;
    const size_t tap = (size_t)cin_g * sizeof(float);
    for (size_t r = 0; r < rows; r++) {
        int oy = (int)((r0 + r) / ow), ox = (int)((r0 + r) % ow);
        for (int gi = 0; gi < g->group; gi++) {
            float *dst = a + ((size_t)gi * rows + r) * k;
            for (int ky = 0; ky < g->kh; ky++) {
                int y = oy * g->sh - g->pt + ky * g->dh;
                int x0 = ox * g->sw - g->pl;
                if (g->group == 1 && g->dw == 1 && y >= 0 && y < h && x0 >= 0 && x0 + g->kw <= w) {
                    /* inside the image: this kernel row's taps are adjacent
                     * pixels, one contiguous run in NHWC (conv1 7x7 of
                     * GoogLeNet: im2col 5x faster than tap by tap) */
                    size_t run = (size_t)g->kw * cin;
                    memcpy(dst, img + ((size_t)y * w + x0) * cin, run * sizeof(float));
                    dst += run;
                    continue;
                }
                for (int kx = 0; kx < g->kw; kx++, dst += cin_g) {
                    int x = ox * g->sw - g->pl + kx * g->dw;
                    if (y < 0 || y >= h || x < 0 || x >= w)
                        memset(dst, 0, tap);
                    else
                        memcpy(dst, img + ((size_t)y * w + x) * cin + (size_t)gi * cin_g, tap);
                }
            }
        }
    }
}

/* Depthwise: output pixels [r0, r0 + rows) of one image, o (oh, ow, c),
 * channels innermost. */
static void gemm_depthwise(const bn_conv_gemm *c, const float *img, float *o, size_t r0,
                           size_t rows, int h, int w, int ow) {
    const bn_conv_geom *g = &c->g;
    const int ch = g->cout;
    for (size_t r = r0; r < r0 + rows; r++) {
        int oy = (int)(r / ow), ox = (int)(r % ow);
        float *q = o + r * ch;
        for (int k = 0; k < ch; k++)
            q[k] = c->bias[k];
        for (int ky = 0; ky < g->kh; ky++) {
            int y = oy * g->sh - g->pt + ky * g->dh;
            if (y < 0 || y >= h)
                continue;
            for (int kx = 0; kx < g->kw; kx++) {
                int x = ox * g->sw - g->pl + kx * g->dw;
                if (x < 0 || x >= w)
                    continue;
                const float *p = img + ((size_t)y * w + x) * ch;
                const float *kk = c->kernel + ((size_t)ky * g->kw + kx) * ch;
                for (int k = 0; k < ch; k++)
                    q[k] += p[k] * kk[k];
            }
        }
        if (g->relu)
            for (int k = 0; k < ch; k++)
                q[k] = q[k] < 0.0f ? 0.0f : q[k];
    }
}

/* What the threads of one forward call share. */
typedef struct {
    const bn_conv_gemm *c;
    const float *in;
    float *out;
    int h, w, oh, ow;
    size_t chunk, chunks; /* rows per task, tasks per image */
    char *workspace;      /* one task's im2col per thread */
    size_t ws_chunk;
    unsigned end; /* tasks */
    bn_pool_queue q;
} gemm_job;

#if BN_HAVE_AMX
/* Row r of A (k floats from src, rows lda apart) as kp bfloat16 at dst,
 * rows [rows, rows_p) zero. vcvtneps2bf16: round to nearest even. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void
gemm_a_bf16(uint16_t *dst, const float *src, size_t lda, size_t rows, size_t rows_p, int k,
            int kp) {
    for (size_t r = 0; r < rows_p; r++) {
        uint16_t *d = dst + r * kp;
        if (r >= rows) {
            memset(d, 0, (size_t)kp * sizeof *d);
            continue;
        }
        const float *x = src + r * lda;
        int i = 0;
        for (; i + 16 <= k; i += 16)
            _mm256_storeu_si256((__m256i *)(d + i),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
        if (i < k) /* the last floats, zeros after them */
            _mm256_storeu_si256((__m256i *)(d + i),
                                (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(
                                    (__mmask16)((1u << (k - i)) - 1), x + i)));
        i = (k + 15) / 16 * 16;
        memset(d + i, 0, (size_t)(kp - i) * sizeof *d);
    }
}
#endif

/* q (rows, cout_g columns of group gi, ldq) = A (rows, k; lda) B_gi on AMX
 * tiles. ab: scratch for A in bfloat16, cb: 32 x 32 floats. The caller
 * configured the tiles (bn_amx_begin). */
static void gemm_amx(const bn_conv_gemm *c, int gi, const float *a, size_t lda, size_t rows,
                     float *q, size_t ldq, uint16_t *ab, float *cb) {
#if !BN_HAVE_AMX
    (void)c, (void)gi, (void)a, (void)lda, (void)rows, (void)q, (void)ldq, (void)ab, (void)cb;
    abort();
#else
    const int kp = c->kp, nb = c->np / 16, pairs = kp / 2;
    const size_t rows_p = (rows + GEMM_AMX_ROWS - 1) / GEMM_AMX_ROWS * GEMM_AMX_ROWS;
    gemm_a_bf16(ab, a, lda, rows, rows_p, c->k, kp);
    const uint16_t *bg = c->kb + (size_t)gi * nb * pairs * 32;
    for (size_t r = 0; r < rows_p; r += GEMM_AMX_ROWS) {
        const uint16_t *ar = ab + r * kp;
        for (int b = 0; b < nb; b += 2) {
            /* columns b*16..: one 16-column block, the next pairs*32 on;
             * chunk k's 16 pairs 16*32 elements on */
            bn_amx_group(kp / 32, ar, (size_t)kp * 2, bg + (size_t)b * pairs * 32,
                         (size_t)pairs * 32, 64, 16 * 32, cb, 32 * sizeof(float), 16, NULL, 0, NULL,
                         0);
            size_t nr = rows - r < GEMM_AMX_ROWS ? rows - r : GEMM_AMX_ROWS;
            int col0 = b * 16, nc = c->cout_g - col0 < 32 ? c->cout_g - col0 : 32;
            for (size_t i = 0; i < nr; i++)
                memcpy(q + (r + i) * ldq + (size_t)gi * c->cout_g + col0, cb + i * 32,
                       (size_t)nc * sizeof(float));
        }
    }
#endif
}

/* One task: output pixels [r0, r0 + rows) of image img. */
static void gemm_task(const gemm_job *j, size_t img, size_t r0, size_t rows, float *a) {
    const bn_conv_gemm *c = j->c;
    const bn_conv_geom *g = &c->g;
    const int cout = g->cout, cin_g = c->cin_g, cout_g = c->cout_g, k = c->k;
    const float *x = j->in + img * (size_t)j->h * j->w * g->cin;
    float *o = j->out + img * (size_t)j->oh * j->ow * cout;
    if (c->path == GEMM_DEPTHWISE) {
        gemm_depthwise(c, x, o, r0, rows, j->h, j->w, j->ow);
        return;
    }
    float *q = o + r0 * cout;
    if (c->amx) {
        /* after the im2col chunk: A in bfloat16, then the C tile */
        char *s = (char *)a + gemm_im2col_bytes(c, j->oh, j->ow);
        uint16_t *ab = (uint16_t *)s;
        float *cb =
            (float *)(s + (gemm_amx_bytes(c, j->oh, j->ow) - GEMM_AMX_ROWS * 32 * sizeof(float)));
        if (c->path == GEMM_IM2COL)
            gemm_im2col(c, x, a, r0, rows, j->h, j->w, j->ow);
        for (int gi = 0; gi < g->group; gi++) {
            if (c->path == GEMM_1X1)
                gemm_amx(c, gi, x + r0 * g->cin + (size_t)gi * cin_g, g->cin, rows, q, cout, ab,
                         cb);
            else
                gemm_amx(c, gi, a + (size_t)gi * rows * k, k, rows, q, cout, ab, cb);
        }
        gemm_bias_relu(c, q, rows);
        return;
    }
    if (c->path == GEMM_1X1) {
        /* the image's pixels (h*w, cin) are A itself; group gi reads its channels */
        for (int gi = 0; gi < g->group; gi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, cout_g, cin_g, 1.0f,
                        x + r0 * g->cin + (size_t)gi * cin_g, g->cin,
                        c->kernel + (size_t)gi * cout_g, cout, 0.0f, q + (size_t)gi * cout_g, cout);
    } else {
        gemm_im2col(c, x, a, r0, rows, j->h, j->w, j->ow);
        for (int gi = 0; gi < g->group; gi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, cout_g, k, 1.0f,
                        a + (size_t)gi * rows * k, k, c->kernel + (size_t)gi * cout_g, cout, 0.0f,
                        q + (size_t)gi * cout_g, cout);
    }
    gemm_bias_relu(c, q, rows);
}

static void gemm_work(void *arg, int tid, int nth) {
    (void)nth;
    gemm_job *j = arg;
    float *a = (float *)(j->workspace + (size_t)tid * j->ws_chunk);
    size_t hw = (size_t)j->oh * j->ow;
    if (j->c->amx)
        bn_amx_begin();
    for (unsigned task; bn_pool_take(&j->q, j->end, &task);) {
        size_t img = task / j->chunks, r0 = task % j->chunks * j->chunk;
        gemm_task(j, img, r0, hw - r0 < j->chunk ? hw - r0 : j->chunk, a);
        bn_pool_finish(&j->q, j->end);
    }
    if (j->c->amx)
        bn_amx_end();
}

void bn_conv_gemm_forward(const bn_conv_gemm *c, const float *in, float *out, int n, int h, int w,
                          void *workspace) {
    if (n <= 0)
        return;
    gemm_job j = {.c = c, .in = in, .out = out, .h = h, .w = w, .workspace = workspace};
    bn_conv_gemm_out_size(&c->g, h, w, &j.oh, &j.ow);
    j.chunk = gemm_chunk_rows(c, j.oh, j.ow);
    j.chunks = ((size_t)j.oh * j.ow + j.chunk - 1) / j.chunk;
    j.ws_chunk = gemm_chunk_bytes(c, j.oh, j.ow);
    j.end = (unsigned)(j.chunks * (size_t)n);
    int all = bn_cpu_threads();
    int nth = all < c->threads ? all : c->threads; /* the workspace holds c->threads chunks */
    openblas_set_num_threads(1);
    bn_pool_run(gemm_work, &j, nth);
    openblas_set_num_threads(all); /* OpenBLAS' own threads back for its other users */
}
