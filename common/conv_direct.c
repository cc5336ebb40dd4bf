/*
 * conv_direct.c: the exact convolution engine (BN_CONV_DIRECT).
 *
 * 3x3 "same" convolution + bias + ReLU on NHWC float32 as one matrix product
 * per chunk of output pixels:
 *
 *   A (rows, 9*cin)   im2col of the input: one row per output pixel (b, y, x),
 *                     columns ordered (ky, kx, ci), zeros outside the image
 *   B (9*cin, cout)   the kernel
 *   C (rows, cout)    = A B, which is the NHWC output itself
 *
 * The Keras kernel layout (3, 3, cin, cout) = (ky, kx, ci, co), read row-major,
 * already IS B: element ((ky*3 + kx)*cin + ci)*cout + co is row (ky, kx, ci),
 * column co. So preparing the weights is an aligned copy, nothing more.
 *
 * Every multiplication of the definition is performed (in OpenBLAS' summation
 * order), so this is the reference the fast engines are tested against. It is
 * deliberately plain: no intrinsics.
 *
 * Determinism: an image's output does not depend on its batch or on the
 * thread count. OpenBLAS does not promise that: the rounding of a row of C
 * changes with the matrix's shape (rows in the tail of a kernel block take
 * another path) and with its own thread count (measured: a photo alone at
 * 32x32 differed in its last bits with 1 and 2 threads, and with each batch
 * size, when chunks spanned images). So each image is cut into chunks of
 * output rows whose size depends on the layer and the image size alone, each
 * chunk is one sgemm of the same shape wherever it comes from, OpenBLAS runs
 * single-threaded, and the chunks are shared among the pool's threads
 * (pool.h) instead.
 *
 * Memory: one chunk's im2col matrix per thread, below DIRECT_CHUNK_BYTES
 * each. Bias + ReLU are applied in one pass over each chunk's output right
 * after its GEMM.
 */
#include "conv_internal.h"
#include "cpu.h"
#include "pool.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound of one chunk's im2col matrix. */
#define DIRECT_CHUNK_BYTES ((size_t)8 << 20)

/* The kernel, and the threads the workspace was sized for. */
typedef struct {
    float *kernel; /* (9*cin, cout) */
    int threads;
} direct_packed;

/* Output rows per chunk for this layer at h x w: as many as fit in
 * DIRECT_CHUNK_BYTES, at least one, at most one image. Depends on nothing
 * else (see Determinism above). */
static size_t direct_chunk_rows(const bn_conv *c, int h, int w) {
    size_t row_bytes = (size_t)9 * c->cin * sizeof(float);
    size_t cap = DIRECT_CHUNK_BYTES / row_bytes;
    size_t hw = (size_t)h * w;
    if (cap < 1)
        cap = 1;
    return hw < cap ? hw : cap;
}

static int direct_prepare(bn_conv *c, const float *kernel, bn_error *err) {
    size_t count = (size_t)9 * c->cin * c->cout;
    size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
    direct_packed *p = malloc(sizeof *p);
    float *b = aligned_alloc(64, bytes);
    if (!p || !b) {
        free(p);
        free(b);
        return bn_fail(err, BN_ENOMEM, "conv_direct: out of memory for a %dx%d kernel", c->cin,
                       c->cout);
    }
    memcpy(b, kernel, count * sizeof(float)); /* (3,3,cin,cout) == (9*cin, cout) */
    p->kernel = b;
    p->threads = bn_cpu_threads();
    if (p->threads > BN_POOL_MAX_THREADS)
        p->threads = BN_POOL_MAX_THREADS;
    /* If a thread cannot start, the pool keeps those it has: slower, not wrong. */
    (void)bn_pool_acquire(p->threads);
    c->packed = p;
    return BN_OK;
}

/* One chunk's im2col matrix per thread (the threads counted at prepare). */
static size_t direct_chunk_bytes(const bn_conv *c, int h, int w) {
    size_t bytes = direct_chunk_rows(c, h, w) * 9 * c->cin * sizeof(float);
    return (bytes + 63) & ~(size_t)63;
}

static size_t direct_workspace(const bn_conv *c, int n, int h, int w) {
    if (n <= 0 || h <= 0 || w <= 0)
        return 0;
    const direct_packed *p = c->packed;
    return direct_chunk_bytes(c, h, w) * (size_t)p->threads;
}

/* im2col of output pixels [r0, r0 + rows) of in (n, h, w, cin) into
 * a (rows, 9*cin): row r holds the 3x3 neighbourhood of pixel r, taps in
 * (ky, kx) order, each tap cin contiguous channels; zeros off the image. */
static void direct_im2col(const float *in, float *a, size_t r0, size_t rows, int h, int w,
                          int cin) {
    size_t hw = (size_t)h * w, k = (size_t)9 * cin, tap = (size_t)cin * sizeof(float);
    size_t b = r0 / hw, p = r0 % hw;
    int y = (int)(p / w), x = (int)(p % w);
    for (size_t r = 0; r < rows; r++) {
        const float *img = in + b * hw * cin;
        float *dst = a + r * k;
        for (int ky = 0; ky < 3; ky++) {
            int yy = y + ky - 1;
            if (yy >= 0 && yy < h && x >= 1 && x + 1 < w) {
                /* interior: the three taps of this kernel row are adjacent
                 * pixels, one contiguous run in NHWC */
                memcpy(dst, img + ((size_t)yy * w + x - 1) * cin, 3 * tap);
                dst += 3 * cin;
                continue;
            }
            for (int kx = 0; kx < 3; kx++, dst += cin) {
                int xx = x + kx - 1;
                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                    memset(dst, 0, tap);
                else
                    memcpy(dst, img + ((size_t)yy * w + xx) * cin, tap);
            }
        }
        if (++x == w) {
            x = 0;
            if (++y == h) {
                y = 0;
                b++;
            }
        }
    }
}

/* What the threads of one forward call share. */
typedef struct {
    const bn_conv *c;
    const float *in;
    float *out;
    int n, h, w;
    size_t chunk, chunks; /* rows per chunk, chunks per image */
    char *workspace;      /* one chunk's im2col per thread */
    size_t ws_chunk;      /* bytes of each */
    bn_pool_queue q;
} direct_job;

/* One thread's share: chunks (image, part) taken from the queue. */
static void direct_work(void *arg, int tid, int nth) {
    (void)nth;
    direct_job *j = arg;
    const bn_conv *c = j->c;
    const direct_packed *p = c->packed;
    const int cin = c->cin, cout = c->cout, k = 9 * cin;
    const size_t hw = (size_t)j->h * j->w;
    float *a = (float *)(j->workspace + (size_t)tid * j->ws_chunk);
    const unsigned end = (unsigned)(j->chunks * (size_t)j->n);
    for (unsigned task; bn_pool_take(&j->q, end, &task);) {
        size_t img = task / j->chunks, r0 = task % j->chunks * j->chunk;
        size_t rows = hw - r0 < j->chunk ? hw - r0 : j->chunk;
        float *o = j->out + (img * hw + r0) * cout;
        direct_im2col(j->in, a, img * hw + r0, rows, j->h, j->w, cin);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, cout, k, 1.0f, a, k,
                    p->kernel, cout, 0.0f, o, cout);
        for (size_t r = 0; r < rows; r++) {
            float *q = o + r * cout;
            for (int co = 0; co < cout; co++) {
                float v = q[co] + c->bias[co];
                q[co] = v > 0.0f ? v : 0.0f;
            }
        }
        bn_pool_finish(&j->q, end);
    }
}

/* in (n, h, w, cin) -> out (n, h, w, cout) = relu(conv3x3_same(in) + bias). */
static void direct_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                           void *workspace) {
    const direct_packed *p = c->packed;
    direct_job j = {.c = c, .in = in, .out = out, .n = n, .h = h, .w = w, .workspace = workspace};
    j.chunk = direct_chunk_rows(c, h, w);
    j.chunks = ((size_t)h * w + j.chunk - 1) / j.chunk;
    j.ws_chunk = direct_chunk_bytes(c, h, w);
    int all = bn_cpu_threads();
    int nth = all < p->threads ? all : p->threads; /* the workspace holds p->threads chunks */
    openblas_set_num_threads(1);
    bn_pool_run(direct_work, &j, nth);
    openblas_set_num_threads(all); /* OpenBLAS' own threads back for its other users */
}

static void direct_release(bn_conv *c) {
    direct_packed *p = c->packed;
    bn_conv_release_pooled(c, p ? p->kernel : NULL);
}

const bn_conv_ops bn_conv_direct_ops = {
    .prepare = direct_prepare,
    .workspace = direct_workspace,
    .forward = direct_forward,
    .release = direct_release,
};
