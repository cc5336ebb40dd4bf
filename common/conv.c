/*
 * conv.c: the convolution interface of conv.h, independent of any engine.
 *
 * Owns: creating and freeing a bn_conv (the bias copy, the choice of engine,
 * handing the kernel to the engine's prepare), dispatching workspace and
 * forward calls to the engine's ops table (conv_internal.h), the 2x2 max pool
 * (NHWC) and engine names. Threads and CPU features: cpu.c.
 *
 * The engines themselves live in conv_direct.c (exact: im2col + sgemm),
 * conv_winograd.c (fast) and conv_small.c (fast, for cin <= 4). AUTO is
 * resolved in exactly one place, conv_resolve() below.
 */
#include "conv.h"
#include "conv_internal.h"
#include "pool.h"

#include <assert.h>
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Layers with at most this many input channels go to the small engine. */
#define CONV_SMALL_CIN 4

int bn_conv_small_fits(int cin) {
    return cin >= 1 && cin <= CONV_SMALL_CIN && bn_conv_winograd_isa() != BN_WINOGRAD_PORTABLE;
}

/* What AUTO means for a layer with these channel counts. The only place the
 * choice is made. With AVX-512 or AVX2 + FMA (bn_conv_winograd_isa): the
 * small engine for cin <= 4 (VGG16's first layer: 27 multiply-adds per
 * output channel done directly beat Winograd's transforms of cin padded to
 * 16: 0.67 to 0.90 ms per image against 1.12 to 1.63 with AVX-512, 2
 * threads), the Winograd engine for every other layer. Without either, the
 * direct engine (OpenBLAS beats the portable Winograd build by 8x). Explicit
 * engines are taken as asked. Measurements: docs/PERFORMANCE.md. */
static bn_conv_engine conv_resolve(bn_conv_engine engine, int cin, int cout) {
    (void)cout;
    if (engine != BN_CONV_AUTO)
        return engine;
    if (bn_conv_winograd_isa() == BN_WINOGRAD_PORTABLE)
        return BN_CONV_DIRECT;
    return bn_conv_small_fits(cin) ? BN_CONV_SMALL : BN_CONV_WINOGRAD;
}

static const bn_conv_ops *conv_ops(bn_conv_engine engine) {
    switch (engine) {
    case BN_CONV_DIRECT: return &bn_conv_direct_ops;
    case BN_CONV_WINOGRAD: return &bn_conv_winograd_ops;
    case BN_CONV_SMALL: return &bn_conv_small_ops;
    default: return NULL;
    }
}

int bn_conv_create(bn_conv **out, bn_conv_engine engine, int cin, int cout, const float *kernel,
                   const float *bias, bn_error *err) {
    return bn_conv_create_precision(out, engine, BN_PRECISION_FP32, cin, cout, kernel, bias, err);
}

int bn_conv_create_precision(bn_conv **out, bn_conv_engine engine, bn_precision precision, int cin,
                             int cout, const float *kernel, const float *bias, bn_error *err) {
    *out = NULL;
    if (cin <= 0 || cout <= 0 || !kernel || !bias)
        return bn_fail(err, BN_EINVAL, "conv: bad layer (cin %d, cout %d)", cin, cout);
    bn_conv_engine resolved = conv_resolve(engine, cin, cout);
    const bn_conv_ops *ops = conv_ops(resolved);
    if (!ops)
        return bn_fail(err, BN_EINVAL, "conv: unknown engine %d", (int)engine);
    if (resolved == BN_CONV_SMALL && !bn_conv_small_fits(cin))
        return bn_fail(err, BN_EINVAL,
                       "conv: the small engine needs cin <= %d and AVX-512 (cin %d)",
                       CONV_SMALL_CIN, cin);
    /* Only the Winograd products have reduced precisions; the direct engine
     * is the exact one whatever was asked, and the small one runs FP32 (its
     * 27 multiply-adds per output are not what costs: the output's bytes are). */
    if (resolved != BN_CONV_WINOGRAD)
        precision = BN_PRECISION_FP32;
    if (precision == BN_PRECISION_FAST || !bn_conv_winograd_has_precision(precision))
        return bn_fail(err, BN_EINVAL, "conv: this CPU cannot run the %s products",
                       precision == BN_PRECISION_FAST   ? "'fast' (unresolved)"
                       : precision == BN_PRECISION_BF16 ? "BF16 (no avx512_bf16)"
                       : precision == BN_PRECISION_AMX  ? "AMX BF16 (no amx_bf16 granted)"
                                                        : "FP16 (no avx512_fp16)");

    bn_conv *c = calloc(1, sizeof *c);
    if (!c)
        return bn_fail(err, BN_ENOMEM, "conv: out of memory for a %dx%d layer", cin, cout);
    c->engine = resolved;
    c->precision = precision;
    c->cin = cin;
    c->cout = cout;
    c->ops = ops;
    c->bias = malloc((size_t)cout * sizeof *c->bias);
    if (!c->bias) {
        free(c);
        return bn_fail(err, BN_ENOMEM, "conv: out of memory for a %dx%d layer", cin, cout);
    }
    memcpy(c->bias, bias, (size_t)cout * sizeof *c->bias);

    int rc = ops->prepare(c, kernel, err);
    if (rc) {
        /* prepare leaves nothing allocated on failure */
        free(c->bias);
        free(c);
        return rc;
    }
    *out = c;
    return BN_OK;
}

void bn_conv_free(bn_conv *c) {
    if (!c)
        return;
    if (c->ops && c->ops->release)
        c->ops->release(c);
    free(c->bias);
    free(c);
}

void bn_conv_release_pooled(bn_conv *c, void *weights) {
    if (c->packed) {
        free(weights);
        free(c->packed);
        bn_pool_release();
    }
    c->packed = NULL;
}

bn_conv_engine bn_conv_engine_of(const bn_conv *c) {
    return c->engine;
}

bn_precision bn_conv_precision_of(const bn_conv *c) {
    return c->precision;
}

size_t bn_conv_workspace(const bn_conv *c, int n, int h, int w) {
    return c->ops->workspace(c, n, h, w);
}

void bn_conv_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                     void *workspace) {
    assert(n >= 0 && h > 0 && w > 0);
    assert(((uintptr_t)workspace & 63) == 0);
    if (n == 0)
        return;
    c->ops->forward(c, in, out, n, h, w, workspace);
}

/* Without a fused pass, the full-size output goes to the end of the
 * workspace, after what the engine's own forward needs. */
static size_t conv_pool_scratch(const bn_conv *c, int n, int h, int w) {
    return (c->ops->workspace(c, n, h, w) + 63) & ~(size_t)63;
}

size_t bn_conv_workspace_pool(const bn_conv *c, int n, int h, int w) {
    if (c->ops->workspace_pool)
        return c->ops->workspace_pool(c, n, h, w);
    return conv_pool_scratch(c, n, h, w) + (size_t)n * h * w * c->cout * sizeof(float);
}

void bn_conv_forward_pool(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                          void *workspace) {
    assert(n >= 0 && h > 0 && w > 0 && h % 2 == 0 && w % 2 == 0);
    assert(((uintptr_t)workspace & 63) == 0);
    if (n == 0)
        return;
    if (c->ops->forward_pool) {
        c->ops->forward_pool(c, in, out, n, h, w, workspace);
        return;
    }
    float *full = (float *)((char *)workspace + conv_pool_scratch(c, n, h, w));
    c->ops->forward(c, in, full, n, h, w, workspace);
    bn_conv_maxpool2x2(full, out, n, h, w, c->cout);
}

/* in (n, h, w, c) -> out (n, h/2, w/2, c). Each output row (y) reads two
 * input rows; the inner loop runs over channels, contiguous in NHWC. */
void bn_conv_maxpool2x2(const float *in, float *out, int n, int h, int w, int c) {
    assert(h % 2 == 0 && w % 2 == 0);
    int oh = h / 2, ow = w / 2;
    for (int b = 0; b < n; b++)
        for (int y = 0; y < oh; y++) {
            const float *r0 = in + (((size_t)b * h + 2 * y) * w) * c;
            const float *r1 = r0 + (size_t)w * c;
            float *o = out + (((size_t)b * oh + y) * ow) * c;
            for (int x = 0; x < ow; x++) {
                const float *p00 = r0 + (size_t)(2 * x) * c, *p01 = p00 + c;
                const float *p10 = r1 + (size_t)(2 * x) * c, *p11 = p10 + c;
                float *q = o + (size_t)x * c;
                for (int k = 0; k < c; k++) {
                    float m0 = p00[k] > p01[k] ? p00[k] : p01[k];
                    float m1 = p10[k] > p11[k] ? p10[k] : p11[k];
                    q[k] = m0 > m1 ? m0 : m1;
                }
            }
        }
}

const char *bn_conv_engine_id(bn_conv_engine resolved) {
    resolved = conv_resolve(resolved, 0, 0);
    if (resolved == BN_CONV_WINOGRAD || resolved == BN_CONV_SMALL)
        return bn_conv_winograd_isa() == BN_WINOGRAD_PORTABLE ? "winograd-portable" : "winograd";
    return "direct";
}

const char *bn_conv_engine_id_precision(bn_conv_engine resolved, bn_precision precision) {
    const char *id = bn_conv_engine_id(resolved);
    if (strcmp(id, "winograd") != 0)
        return id;
    switch (precision) {
    case BN_PRECISION_BF16: return "winograd-avx512-bf16";
    case BN_PRECISION_FP16: return "winograd-avx512-fp16";
    case BN_PRECISION_AMX: return "winograd-amx-bf16";
    default: return id;
    }
}

const char *bn_conv_engine_id_network(bn_conv_engine resolved, bn_precision precision,
                                      int forced_winograd_small) {
    const char *id = bn_conv_engine_id_precision(resolved, precision);
    if (!forced_winograd_small)
        return id;
    if (strcmp(id, "winograd") == 0)
        return "winograd-all";
    if (strcmp(id, "winograd-avx512-bf16") == 0)
        return "winograd-avx512-bf16-all";
    if (strcmp(id, "winograd-avx512-fp16") == 0)
        return "winograd-avx512-fp16-all";
    if (strcmp(id, "winograd-amx-bf16") == 0)
        return "winograd-amx-bf16-all";
    return id;
}

int bn_conv_engine_parse(const char *s, bn_conv_engine *out) {
    static const bn_conv_engine all[] = {BN_CONV_AUTO, BN_CONV_DIRECT, BN_CONV_WINOGRAD};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, bn_conv_engine_name(all[i])) == 0) {
            *out = all[i];
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_conv_engine_name(bn_conv_engine e) {
    switch (e) {
    case BN_CONV_AUTO: return "auto";
    case BN_CONV_DIRECT: return "direct";
    case BN_CONV_WINOGRAD: return "winograd";
    case BN_CONV_SMALL: return "small";
    }
    return "unknown";
}
