/*
 * test_conv_props.c: invariants of the convolution engines, over every shape
 * rather than samples (the partial-batch crash of 0.1.0 lived between the
 * samples).
 *
 * 1. Workspace: for every engine, every VGG16 layer, input sizes 32..512 and
 *    every n <= max <= 24, bn_conv_workspace(n) <= bn_conv_workspace(max),
 *    with and without the fused pool: a network sized for its largest batch
 *    has room for every smaller one.
 * 2. Random shapes against the definition (support_naive_conv, double sums):
 *    h and w 1..48 (non-square), wide strips up to 320, cin 1..40, cout
 *    1..70, a batch n of 1..17 run in a workspace sized for a larger max (a
 *    partial batch), threads 1..3, every engine, with and without the fused
 *    pool; each element within 1e-4 of the scale of its terms. Both engines'
 *    outputs for each image also equal the image run alone, bitwise.
 * Draws come from BN_PROPERTY_SEED (else the time; printed).
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"
#include "weights.h"

#include <time.h>

static int shift_of(int layer) {
    static const int shift[BN_VGG16_NCONV] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
    return shift[layer];
}

static void workspace_monotone(void) {
    static const bn_conv_engine engines[] = {BN_CONV_DIRECT, BN_CONV_WINOGRAD};
    long pairs = 0;
    for (size_t e = 0; e < 2; e++)
        for (int i = 0; i < BN_VGG16_NCONV; i++) {
            int cin = bn_vgg16_convs[i].cin, cout = bn_vgg16_convs[i].cout;
            float *k = calloc((size_t)9 * cin * cout, sizeof *k), *b = calloc(cout, sizeof *b);
            bn_conv *c = NULL;
            bn_error err;
            CHECK_INT(bn_conv_create(&c, engines[e], cin, cout, k, b, &err), BN_OK);
            for (int size = 32; c && size <= 512; size += 32) {
                int s = size >> shift_of(i);
                int bad = 0;
                for (int max = 1; max <= 24; max++) {
                    size_t wmax = bn_conv_workspace(c, max, s, s);
                    size_t pmax = bn_conv_workspace_pool(c, max, s, s);
                    for (int n = 1; n <= max; n++, pairs++)
                        bad += bn_conv_workspace(c, n, s, s) > wmax ||
                               bn_conv_workspace_pool(c, n, s, s) > pmax;
                }
                CHECK_MSG(bad == 0, "%s %s at %d: %d batches need more than their max",
                          bn_conv_engine_name(engines[e]), bn_vgg16_convs[i].name, s, bad);
            }
            bn_conv_free(c);
            free(k);
            free(b);
        }
    printf("workspace(n) <= workspace(max): %ld pairs checked\n", pairs);
}

static int draw(int lo, int hi) {
    return lo + (int)((support_rnd() + 1) * 0.5f * (float)(hi - lo + 1) * 0.9999f);
}

/* One random layer on n images in a workspace sized for max, every engine. */
static void random_layer(int d) {
    int h = draw(1, 48), w = draw(1, 48);
    if (d % 5 == 4) /* a wide strip */
        w = draw(200, 320), h = draw(1, 6);
    int cin = draw(1, 40), cout = draw(1, 70), n = draw(1, 17), max = n + draw(0, 8);
    int threads = draw(1, 3), pool = d % 2 && h % 2 == 0 && w % 2 == 0;
    while ((double)n * h * w * cin * cout > 2e7 && n > 1)
        n--;
    printf("draw %d: n %d of %d, %dx%d, %d->%d, %d threads%s\n", d, n, max, h, w, cin, cout,
           threads, pool ? ", pooled" : "");
    size_t nin = (size_t)n * h * w * cin, nout = (size_t)n * h * w * cout;
    float *in = malloc(nin * sizeof *in), *k = malloc((size_t)9 * cin * cout * sizeof *k);
    float *bias = malloc(cout * sizeof *bias);
    for (size_t i = 0; i < nin; i++)
        in[i] = support_rnd();
    for (size_t i = 0; i < (size_t)9 * cin * cout; i++)
        k[i] = support_rnd() / sqrtf(9.0f * cin);
    for (int i = 0; i < cout; i++)
        bias[i] = 0.1f * support_rnd();
    double *ref = malloc(nout * sizeof *ref), *absum = malloc(nout * sizeof *absum);
    support_naive_conv(in, k, bias, ref, absum, n, h, w, cin, cout);
    size_t pout = pool ? nout / 4 : nout, per_out = pout / n, per_in = nin / n;
    float *out = malloc(pout * sizeof *out), *one = malloc(per_out * sizeof *one);
    bn_cpu_set_threads(threads);
    static const bn_conv_engine engines[] = {BN_CONV_DIRECT, BN_CONV_WINOGRAD};
    for (size_t e = 0; e < 2; e++) {
        bn_conv *c = NULL;
        bn_error err;
        CHECK_INT(bn_conv_create(&c, engines[e], cin, cout, k, bias, &err), BN_OK);
        if (!c)
            continue;
        size_t ws = pool ? bn_conv_workspace_pool(c, max, h, w) : bn_conv_workspace(c, max, h, w);
        void *wsp = support_ws_alloc(ws);
        for (size_t i = 0; i < pout; i++)
            out[i] = NAN;
        if (pool)
            bn_conv_forward_pool(c, in, out, n, h, w, wsp);
        else
            bn_conv_forward(c, in, out, n, h, w, wsp);
        size_t bad = 0;
        int oh = pool ? h / 2 : h, ow = pool ? w / 2 : w;
        for (int b = 0; b < n; b++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++)
                    for (int co = 0; co < cout; co++) {
                        /* the reference: max over the pooled 2x2 (ReLU commutes) */
                        double r = -INFINITY, a = 0;
                        for (int p = 0; p < (pool ? 4 : 1); p++) {
                            int yy = pool ? 2 * y + p / 2 : y, xx = pool ? 2 * x + p % 2 : x;
                            size_t i = (((size_t)b * h + yy) * w + xx) * cout + co;
                            r = ref[i] > r ? ref[i] : r;
                            a = absum[i] > a ? absum[i] : a;
                        }
                        float v = out[(((size_t)b * oh + y) * ow + x) * cout + co];
                        bad += !(fabs(v - r) <= 1e-4 * a + 1e-6);
                    }
        CHECK_MSG(bad == 0, "draw %d %s: %zu of %zu outputs off", d,
                  bn_conv_engine_name(engines[e]), bad, pout);
        int differ = 0;
        for (int b = 0; b < n; b++) {
            if (pool)
                bn_conv_forward_pool(c, in + b * per_in, one, 1, h, w, wsp);
            else
                bn_conv_forward(c, in + b * per_in, one, 1, h, w, wsp);
            differ += memcmp(one, out + b * per_out, per_out * sizeof *one) != 0;
        }
        CHECK_MSG(differ == 0, "draw %d %s: %d of %d images differ from themselves alone", d,
                  bn_conv_engine_name(engines[e]), differ, n);
        free(wsp);
        bn_conv_free(c);
    }
    free(in);
    free(k);
    free(bias);
    free(ref);
    free(absum);
    free(out);
    free(one);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    workspace_monotone();
    const char *env = getenv("BN_PROPERTY_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("BN_PROPERTY_SEED=%llu\n", (unsigned long long)seed);
    support_seed(seed);
    for (int d = 0; d < 20; d++)
        random_layer(d);
    return check_done();
}
