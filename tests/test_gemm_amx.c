/*
 * test_gemm_amx.c: the general convolutions (conv_gemm.c) under
 * --precision amx, against the same layers in FP32.
 *
 * For each geometry (1x1 with k below, at and far above one tile's 32
 * channels, GoogLeNet's 832 -> 384; grouped 1x1; 5x5, 7x7 stride 2,
 * asymmetric pads, dilation, groups through im2col), on 3 images whose
 * pixel counts leave a partial task (23 x 23 = 529 = 256 + 256 + 17 rows):
 *   - where AMX runs, the layer says it uses it (depthwise never: no GEMM)
 *     and is within BF16's error of FP32: relative L2 at most 1e-2 and at
 *     least 1e-5 (really rounded to bfloat16), every element within 2e-2 of
 *     the scale of its terms (bias + sum |a b|);
 *   - the same bytes at 1, 2 and 3 threads, and for each image alone as in
 *     the batch of 3;
 *   - where AMX does not run, asking for it gives the FP32 layer, byte for
 *     byte.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    bn_conv_geom g;
    const char *what;
} gcase;

/* n images through a layer made in precision p with `threads` threads. */
static float *run(const bn_conv_geom *g, const float *k, const float *b, bn_precision p,
                  int threads, const float *in, int n, int h, int w, int *uses_amx) {
    bn_error err;
    bn_conv_gemm *c = NULL;
    bn_cpu_set_threads(threads);
    int rc = bn_conv_gemm_create_precision(&c, g, k, b, p, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return NULL;
    int oh, ow;
    bn_conv_gemm_out_size(g, h, w, &oh, &ow);
    void *ws = aligned_alloc(64, (bn_conv_gemm_workspace(c, h, w) + 127) & ~(size_t)63);
    float *out = malloc((size_t)n * oh * ow * g->cout * sizeof(float));
    for (size_t i = 0; i < (size_t)n * oh * ow * g->cout; i++)
        out[i] = NAN;
    bn_conv_gemm_forward(c, in, out, n, h, w, ws);
    if (uses_amx)
        *uses_amx = bn_conv_gemm_uses_amx(c);
    bn_conv_gemm_free(c);
    free(ws);
    return out;
}

static void test_case(const gcase *q, int have_amx) {
    const bn_conv_geom *g = &q->g;
    const int h = 23, w = 23, n = 3, cin_g = g->cin / g->group;
    size_t nk = (size_t)g->kh * g->kw * cin_g * g->cout, nin = (size_t)n * h * w * g->cin;
    float *k = malloc(nk * sizeof *k), *b = malloc(g->cout * sizeof *b);
    float *in = malloc(nin * sizeof *in);
    for (size_t i = 0; i < nk; i++)
        k[i] = support_rnd() / sqrtf((float)(g->kh * g->kw * cin_g));
    for (int i = 0; i < g->cout; i++)
        b[i] = support_rnd();
    for (size_t i = 0; i < nin; i++) /* ReLU'd activations, as between layers */
        in[i] = fabsf(support_rnd());
    int oh, ow, amx = -1;
    bn_conv_gemm_out_size(g, h, w, &oh, &ow);
    size_t nout = (size_t)n * oh * ow * g->cout, per = (size_t)oh * ow * g->cout;
    float *ref = run(g, k, b, BN_PRECISION_FP32, 2, in, n, h, w, NULL);
    float *o2 = run(g, k, b, BN_PRECISION_AMX, 2, in, n, h, w, &amx);
    float *o1 = run(g, k, b, BN_PRECISION_AMX, 1, in, n, h, w, NULL);
    float *o3 = run(g, k, b, BN_PRECISION_AMX, 3, in, n, h, w, NULL);
    if (!ref || !o1 || !o2 || !o3)
        goto done;
    const int depthwise = g->group == g->cin && g->group == g->cout && g->group > 1;
    CHECK_INT(amx, have_amx && !depthwise);
    if (!amx) {
        CHECK_MSG(!memcmp(ref, o2, nout * sizeof *ref), "%s: no AMX here, not the FP32 bytes",
                  q->what);
        goto done;
    }
    /* the FP32 layer without bias and ReLU gives each element's scale: the
     * same layer on |in| with |k| */
    double num = 0, den = 0;
    size_t off = 0;
    for (size_t i = 0; i < nout; i++) {
        double d = (double)o2[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        off += !(fabs(d) <= 2e-2 * (fabs(ref[i]) + 1.0) + 1e-6);
    }
    double e = den > 0 ? sqrt(num / den) : 0;
    printf("%-26s amx vs fp32 rel L2 %.2e\n", q->what, e);
    CHECK_MSG(e <= 1e-2 && e >= 1e-5, "%s: rel L2 %.3g", q->what, e);
    CHECK_MSG(off == 0, "%s: %zu elements off", q->what, off);
    CHECK_MSG(!memcmp(o1, o2, nout * sizeof *o1), "%s: 1 vs 2 threads", q->what);
    CHECK_MSG(!memcmp(o3, o2, nout * sizeof *o3), "%s: 3 vs 2 threads", q->what);
    for (int img = 0; img < n; img++) {
        float *alone =
            run(g, k, b, BN_PRECISION_AMX, 2, in + (size_t)img * h * w * g->cin, 1, h, w, NULL);
        CHECK_MSG(alone && !memcmp(alone, o2 + img * per, per * sizeof *alone),
                  "%s: image %d alone differs from the batch", q->what, img);
        free(alone);
    }
done:
    free(k);
    free(b);
    free(in);
    free(ref);
    free(o1);
    free(o2);
    free(o3);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    /* geometry: cin, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group, relu */
    static const gcase cases[] = {
        {{16, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, "1x1 16->24"},
        {{32, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0}, "1x1 32->64, no ReLU"},
        {{3, 40, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, "1x1 3->40"},
        {{832, 384, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1}, "1x1 832->384 (GoogLeNet)"},
        {{8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, 1}, "grouped 1x1"},
        {{8, 12, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1}, "5x5"},
        {{3, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1}, "7x7 stride 2 (GoogLeNet)"},
        {{6, 10, 3, 3, 2, 1, 0, 1, 2, 0, 1, 1, 1, 1}, "3x3 asymmetric"},
        {{6, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1}, "3x3 dilated"},
        {{8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1}, "3x3 grouped"},
        {{16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16, 1}, "depthwise (stays FP32)"},
    };
    const int have_amx = bn_conv_winograd_has_precision(BN_PRECISION_AMX);
    if (!have_amx)
        printf("no AMX here (%s): asking for it must give the FP32 bytes\n", bn_cpu_model());
    support_seed(11);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        test_case(&cases[c], have_amx);
    return check_done();
}
