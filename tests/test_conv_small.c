/*
 * test_conv_small.c: the small engine (conv_small.c: direct AVX-512 or AVX2
 * 3x3 convolution for cin <= 4) against the exact direct engine; where
 * AVX-512 runs, the AVX2 build (forced) must give its bytes in parts 1-2.
 *
 * 1. Accuracy: random inputs and He-scaled kernels for cin 1, 2, 3, 4 and
 *    cout 1, 16, 17, 64 (plus 80 and 130: a partial second and third group of
 *    64 channels) at 1x1, 2x3, 7x9, 31x33 and 224x224, batches 1 to 9; each
 *    output within relative L2 1e-6 of the direct engine, and no element
 *    further from it than 1e-5 of the layer's largest output (an indexing or
 *    edge mistake is O(1)). Every element is written (outputs start as NaN).
 * 2. The fused pool (bn_conv_forward_pool) at even sizes: equal, bit for bit,
 *    to the engine's own forward followed by bn_conv_maxpool2x2 (max and ReLU
 *    commute), and within the same bounds of the direct engine's pool.
 * 3. Determinism: nine images each computed alone on one thread (and
 *    checked against the direct engine as in 1); then in
 *    batches of 6, 7, 8 and 9 starting at different images (so each image
 *    sits at several batch positions) on 1, 2 and 3 threads: every image's
 *    output must be the same bytes as alone (memcmp), with and without pool.
 * 4. The choice: AUTO gives cin <= 4 to this engine with AVX-512 or AVX2
 *    (FP32 even when BF16 is asked) and cin 5 to Winograd; an explicit
 *    request for cin 5 fails; VGG16's vectors record "winograd" (the
 *    AVX-512 and AVX2 builds alike) under AUTO (with BF16:
 *    "winograd-avx512-bf16") and "winograd-all" with Winograd forced on the
 *    first layer.
 * Without either only the last part runs (AUTO then picks the direct engine).
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A layer's random data: inputs uniform in [-1, 1) plus an offset (real
 * first layers see signed, mean-subtracted pixels), kernel He-scaled. */
typedef struct {
    int cin, cout;
    float *k, *bias;
} layer;

static layer make_layer(int cin, int cout) {
    layer l = {cin, cout, malloc((size_t)9 * cin * cout * sizeof(float)),
               malloc((size_t)cout * sizeof(float))};
    float ks = sqrtf(2.0f / (9 * cin));
    for (size_t i = 0; i < (size_t)9 * cin * cout; i++)
        l.k[i] = support_rnd() * ks;
    for (int i = 0; i < cout; i++)
        l.bias[i] = 0.1f * support_rnd();
    return l;
}

static void free_layer(layer *l) {
    free(l->k);
    free(l->bias);
}

static float *make_input(size_t count) {
    float *in = malloc(count * sizeof *in);
    for (size_t i = 0; i < count; i++)
        in[i] = 50.0f * support_rnd() + 10.0f;
    return in;
}

/* out = the layer (engine e, `threads` threads) on in (n, h, w, cin), with
 * the fused pool when pool; out starts as NaN. 0 on success. */
static int run(bn_conv_engine e, int threads, const layer *l, const float *in, float *out, int n,
               int h, int w, int pool) {
    bn_error err;
    bn_cpu_set_threads(threads);
    bn_conv *c;
    if (bn_conv_create(&c, e, l->cin, l->cout, l->k, l->bias, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return -1;
    }
    CHECK_INT(bn_conv_engine_of(c), e);
    size_t nout = (size_t)n * (pool ? (h / 2) * (w / 2) : h * w) * l->cout;
    for (size_t i = 0; i < nout; i++)
        out[i] = NAN;
    support_conv_forward(c, in, out, n, h, w, pool);
    bn_conv_free(c);
    return 0;
}

/* a against the exact b: rel L2 <= 1e-6, each element within 1e-5 of b's
 * largest magnitude, nothing left unwritten. */
static void close_to(const float *a, const float *b, size_t count, const char *what) {
    double amax = 0, worst = 0;
    size_t nan = 0;
    for (size_t i = 0; i < count; i++) {
        amax = fabs(b[i]) > amax ? fabs(b[i]) : amax;
        nan += isnan(a[i]);
        double d = fabs((double)a[i] - b[i]);
        worst = d > worst ? d : worst;
    }
    double rel = support_rel_l2(a, b, count);
    CHECK_MSG(nan == 0, "%s: %zu values not written", what, nan);
    CHECK_MSG(rel <= 1e-6, "%s: rel L2 %.3g vs direct", what, rel);
    CHECK_MSG(worst <= 1e-5 * amax, "%s: max abs error %.3g (largest output %.3g)", what, worst,
              amax);
    printf("%-28s rel L2 %.2e  max abs %.2e of %.3g\n", what, rel, worst, amax);
}

/* Where AVX-512 runs: the AVX2 build (forced) gives want's bytes. */
static void same_in_avx2(const layer *l, const float *in, const float *want, size_t count, int n,
                         int h, int w, int pool, int threads, const char *what) {
    if (bn_conv_winograd_isa() != BN_WINOGRAD_AVX512)
        return;
    setenv("BN_WINOGRAD_ISA", "avx2", 1);
    float *o = support_ws_alloc(count * sizeof *o);
    if (!run(BN_CONV_SMALL, threads, l, in, o, n, h, w, pool))
        CHECK_MSG(memcmp(o, want, count * sizeof *o) == 0,
                  "%s: the AVX2 build's bytes differ from AVX-512's", what);
    free(o);
    unsetenv("BN_WINOGRAD_ISA");
}

/* Part 1 and 2 for one shape. */
static void test_shape(int n, int h, int w, int cin, int cout, int threads) {
    layer l = make_layer(cin, cout);
    size_t nin = (size_t)n * h * w * cin, nout = (size_t)n * h * w * cout;
    float *in = make_input(nin);
    /* 64-byte aligned, as the network's tensors: large outputs are streamed */
    float *os = support_ws_alloc(nout * sizeof *os), *od = malloc(nout * sizeof *od);
    char what[64];
    snprintf(what, sizeof what, "n%d %dx%d %d->%d t%d", n, h, w, cin, cout, threads);
    if (!run(BN_CONV_SMALL, threads, &l, in, os, n, h, w, 0) &&
        !run(BN_CONV_DIRECT, 2, &l, in, od, n, h, w, 0)) {
        close_to(os, od, nout, what);
        same_in_avx2(&l, in, os, nout, n, h, w, 0, threads, what);
    }
    if (h % 2 == 0 && w % 2 == 0) {
        size_t np = nout / 4;
        float *ps = support_ws_alloc(np * sizeof *ps), *pd = malloc(np * sizeof *pd);
        float *pf = malloc(np * sizeof *pf);
        snprintf(what, sizeof what, "n%d %dx%d %d->%d t%d pool", n, h, w, cin, cout, threads);
        if (!run(BN_CONV_SMALL, threads, &l, in, ps, n, h, w, 1) &&
            !run(BN_CONV_DIRECT, 2, &l, in, pd, n, h, w, 1)) {
            close_to(ps, pd, np, what);
            same_in_avx2(&l, in, ps, np, n, h, w, 1, threads, what);
            bn_conv_maxpool2x2(os, pf, n, h, w, cout);
            CHECK_MSG(memcmp(ps, pf, np * sizeof *ps) == 0,
                      "%s: fused pool differs from forward + maxpool2x2", what);
        }
        free(ps);
        free(pd);
        free(pf);
    }
    free(in);
    free(os);
    free(od);
    free_layer(&l);
}

/* Part 3: nine images, alone and in batches. */
#define NIMG 9
static void test_batches(int h, int w, int cin, int cout, int pool) {
    layer l = make_layer(cin, cout);
    size_t per_in = (size_t)h * w * cin;
    size_t per_out = (size_t)(pool ? (h / 2) * (w / 2) : h * w) * cout;
    float *in = make_input(NIMG * per_in);
    float *alone = support_ws_alloc(NIMG * per_out * sizeof *alone);
    float *bin = malloc(NIMG * per_in * sizeof *bin),
          *bout = support_ws_alloc(NIMG * per_out * sizeof *bout);
    for (int i = 0; i < NIMG; i++)
        if (run(BN_CONV_SMALL, 1, &l, in + i * per_in, alone + i * per_out, 1, h, w, pool))
            goto done;
    /* the nine against the exact engine, as one batch of 9 */
    if (run(BN_CONV_DIRECT, 2, &l, in, bout, NIMG, h, w, pool))
        goto done;
    char what[64];
    snprintf(what, sizeof what, "n9 %dx%d %d->%d alone%s", h, w, cin, cout, pool ? " pool" : "");
    close_to(alone, bout, NIMG * per_out, what);
    static const int sizes[] = {6, 7, 8, 9};
    int cases = 0, differ = 0;
    for (int s = 0; s < 4; s++)
        for (int threads = 1; threads <= 3; threads++) {
            int n = sizes[s], first = (s * 3 + threads) % NIMG;
            for (int i = 0; i < n; i++)
                memcpy(bin + i * per_in, in + (size_t)((first + i) % NIMG) * per_in,
                       per_in * sizeof *bin);
            if (run(BN_CONV_SMALL, threads, &l, bin, bout, n, h, w, pool))
                goto done;
            for (int i = 0; i < n; i++, cases++)
                if (memcmp(bout + i * per_out, alone + (size_t)((first + i) % NIMG) * per_out,
                           per_out * sizeof *bout) != 0) {
                    differ++;
                    fprintf(stderr,
                            "%dx%d %d->%d%s: image %d at position %d of %d, %d threads "
                            "differs from alone\n",
                            h, w, cin, cout, pool ? " pool" : "", (first + i) % NIMG, i, n,
                            threads);
                }
        }
    CHECK_INT(differ, 0);
    printf("%dx%d %d->%d%s: %d placements identical to alone\n", h, w, cin, cout,
           pool ? " pool" : "", cases - differ);
done:
    free(in);
    free(alone);
    free(bin);
    free(bout);
    free_layer(&l);
}

/* Part 4. */
static void test_choice(void) {
    layer l3 = make_layer(3, 64), l5 = make_layer(5, 64);
    bn_conv *c;
    bn_error err;
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    const int fast = isa != BN_WINOGRAD_PORTABLE;
    /* the same id (and bytes) from the AVX-512 and AVX2 builds */
    const char *id = "winograd", *all = "winograd-all";
    CHECK_INT(bn_conv_create(&c, BN_CONV_AUTO, 3, 64, l3.k, l3.bias, &err), BN_OK);
    CHECK_INT(bn_conv_engine_of(c), fast ? BN_CONV_SMALL : BN_CONV_DIRECT);
    bn_conv_free(c);
    CHECK_INT(bn_conv_create(&c, BN_CONV_AUTO, 5, 64, l5.k, l5.bias, &err), BN_OK);
    CHECK_INT(bn_conv_engine_of(c), fast ? BN_CONV_WINOGRAD : BN_CONV_DIRECT);
    bn_conv_free(c);
    /* explicit engines are taken as asked */
    CHECK_INT(bn_conv_create(&c, BN_CONV_WINOGRAD, 3, 64, l3.k, l3.bias, &err), BN_OK);
    CHECK_INT(bn_conv_engine_of(c), BN_CONV_WINOGRAD);
    bn_conv_free(c);
    CHECK_INT(bn_conv_create(&c, BN_CONV_SMALL, 5, 64, l5.k, l5.bias, &err), BN_EINVAL);
    CHECK(strstr(err.msg, "small engine") != NULL);
    if (fast && bn_conv_winograd_has_precision(BN_PRECISION_BF16)) {
        CHECK_INT(bn_conv_create_precision(&c, BN_CONV_AUTO, BN_PRECISION_BF16, 3, 64, l3.k,
                                           l3.bias, &err),
                  BN_OK);
        CHECK_INT(bn_conv_engine_of(c), BN_CONV_SMALL);
        CHECK_INT(bn_conv_precision_of(c), BN_PRECISION_FP32);
        bn_conv_free(c);
    }
    /* not a command-line choice, but named in listings (bench_net --layers) */
    bn_conv_engine e;
    CHECK_INT(bn_conv_engine_parse("small", &e), BN_EINVAL);
    CHECK_STR(bn_conv_engine_name(BN_CONV_SMALL), "small");
    free_layer(&l3);
    free_layer(&l5);

    /* the ids VGG16's vectors record */
    char path[4096];
    snprintf(path, sizeof path, "%s/models/vgg16_random_notop.h5", getenv("BN_SHARED"));
    bn_vgg16_weights w;
    CHECK_INT(bn_weights_load(&w, path, &err), BN_OK);
    bn_cpu_set_threads(2);
    bn_vgg16 *a = support_net(&w, BN_CONV_AUTO, BN_PRECISION_FP32, 32, 1);
    bn_vgg16 *f = support_net(&w, BN_CONV_WINOGRAD, BN_PRECISION_FP32, 32, 1);
    char direct[96]; /* OpenBLAS computes the direct engine's vectors: its kernels named */
    snprintf(direct, sizeof direct, "direct+openblas-%s", bn_cpu_blas_core());
    for (char *q = direct; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    CHECK_STR(bn_vgg16_engine_id(a), fast ? id : direct);
    CHECK_STR(bn_vgg16_engine_id(f), fast ? all : "winograd-portable");
    CHECK_INT(bn_vgg16_engine(a), fast ? BN_CONV_WINOGRAD : BN_CONV_DIRECT);
    bn_vgg16_free(a);
    bn_vgg16_free(f);
    if (bn_conv_winograd_has_precision(BN_PRECISION_BF16)) {
        /* the first layer in FP32, the id named after the other twelve */
        bn_vgg16 *b = support_net(&w, BN_CONV_AUTO, BN_PRECISION_BF16, 32, 1);
        CHECK_STR(bn_vgg16_engine_id(b), "winograd-avx512-bf16");
        bn_vgg16_free(b);
    }
    bn_weights_free(&w);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    test_choice();
    if (bn_conv_winograd_isa() == BN_WINOGRAD_PORTABLE) {
        printf("no AVX-512 or AVX2: the small engine is not available here\n");
        return check_done();
    }
    static const int hw[][2] = {{1, 1}, {2, 3}, {7, 9}, {31, 33}};
    static const int couts[] = {1, 16, 17, 64, 80, 130};
    for (int s = 0; s < 4; s++)
        for (int cin = 1; cin <= 4; cin++)
            for (int k = 0; k < 6; k++)
                test_shape(1 + (s + cin + k) % 9, hw[s][0], hw[s][1], cin, couts[k],
                           1 + (s + k) % 3);
    /* even sizes for the pool, odd widths past the 6-pixel blocking */
    test_shape(2, 2, 2, 3, 64, 2);
    test_shape(3, 6, 10, 4, 17, 3);
    test_shape(7, 30, 32, 1, 64, 2);
    test_shape(5, 14, 26, 2, 130, 1);
    /* VGG16's first layer at its size, alone and in a batch */
    test_shape(1, 224, 224, 3, 64, 2);
    test_shape(8, 224, 224, 3, 64, 3);
    test_shape(1, 224, 224, 1, 17, 1);

    test_batches(31, 33, 3, 64, 0);
    test_batches(30, 34, 3, 64, 1);
    test_batches(7, 9, 4, 17, 0);
    test_batches(224, 224, 3, 64, 0);
    return check_done();
}
