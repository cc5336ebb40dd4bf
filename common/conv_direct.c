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
 * deliberately plain: no intrinsics, no threads of its own (OpenBLAS' threads
 * run the GEMM).
 *
 * Memory: the batch is processed in chunks of output pixels so that the
 * im2col matrix stays below DIRECT_CHUNK_BYTES whatever the batch size; a
 * chunk may span several images or part of one. Bias + ReLU are applied in
 * one pass over each chunk's output right after its GEMM.
 */
#include "conv_internal.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

/* Upper bound of the im2col workspace. */
#define DIRECT_CHUNK_BYTES ((size_t)64 << 20)

/* Output pixels per chunk for this layer and (n, h, w): as many as fit in
 * DIRECT_CHUNK_BYTES, at least one, at most all of them. */
static size_t direct_chunk_rows(const bn_conv *c, int n, int h, int w) {
    size_t row_bytes = (size_t)9 * c->cin * sizeof(float);
    size_t cap = DIRECT_CHUNK_BYTES / row_bytes;
    size_t total = (size_t)n * h * w;
    if (cap < 1)
        cap = 1;
    return total < cap ? total : cap;
}

static int direct_prepare(bn_conv *c, const float *kernel, bn_error *err) {
    size_t count = (size_t)9 * c->cin * c->cout;
    size_t bytes = (count * sizeof(float) + 63) & ~(size_t)63;
    float *b = aligned_alloc(64, bytes);
    if (!b)
        return bn_fail(err, BN_ENOMEM, "conv_direct: out of memory for a %dx%d kernel", c->cin,
                       c->cout);
    memcpy(b, kernel, count * sizeof(float)); /* (3,3,cin,cout) == (9*cin, cout) */
    c->packed = b;
    return BN_OK;
}

static size_t direct_workspace(const bn_conv *c, int n, int h, int w) {
    if (n <= 0 || h <= 0 || w <= 0)
        return 0;
    size_t bytes = direct_chunk_rows(c, n, h, w) * 9 * c->cin * sizeof(float);
    return (bytes + 63) & ~(size_t)63;
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

/* in (n, h, w, cin) -> out (n, h, w, cout) = relu(conv3x3_same(in) + bias). */
static void direct_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                           void *workspace) {
    const int cin = c->cin, cout = c->cout, k = 9 * cin;
    const float *kernel = c->packed, *bias = c->bias;
    float *a = workspace;
    size_t total = (size_t)n * h * w, chunk = direct_chunk_rows(c, n, h, w);
    for (size_t r0 = 0; r0 < total; r0 += chunk) {
        size_t rows = total - r0 < chunk ? total - r0 : chunk;
        float *o = out + r0 * cout;
        direct_im2col(in, a, r0, rows, h, w, cin);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, cout, k, 1.0f, a, k,
                    kernel, cout, 0.0f, o, cout);
        for (size_t r = 0; r < rows; r++) {
            float *q = o + r * cout;
            for (int co = 0; co < cout; co++) {
                float v = q[co] + bias[co];
                q[co] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

static void direct_release(bn_conv *c) {
    free(c->packed);
    c->packed = NULL;
}

const bn_conv_ops bn_conv_direct_ops = {
    .prepare = direct_prepare,
    .workspace = direct_workspace,
    .forward = direct_forward,
    .release = direct_release,
};
