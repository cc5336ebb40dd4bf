/*
 * test_winograd.c: the Winograd engine against the definition.
 *
 * Random inputs and kernels at many shapes: sizes that are and are not
 * multiples of the 6x6 output tile, 1x1 and thin images, batches of 1 to 8
 * (the engine lays a batch out as a grid of images on one canvas of tiles),
 * channel counts that are not multiples of the vector width (cin = 3, cout =
 * 20), and a layer with enough tiles to be processed in several blocks. Each
 * output is compared with seven naive loops in double precision, and with the
 * exact direct engine; with 1, 2 and 3 threads the results must be identical
 * bit for bit (the split changes who computes a value, never how). Where
 * the AVX-512 build runs, the AVX2 build (forced: BN_WINOGRAD_ISA=avx2)
 * must give its bytes at every shape, fused pool included. A few
 * shapes again with the portable build forced (BN_WINOGRAD_PORTABLE).
 *
 * Tolerance: Winograd F(6x6, 3x3) in float32 is accurate to about 1e-5
 * relative L2 (the transforms mix values with weights up to 32 and 21/4); the
 * bound here is 5e-5, far below what any indexing or transform mistake gives
 * (those are O(1)). Every element is also checked against the scale of its
 * terms, so that a single wrong pixel cannot hide in the L2 norm.
 *
 * Then the real network with the shared weights (../shared/models): each of
 * the 13 layers against the direct engine on the direct engine's own input
 * (one reference photo at 224; the per-layer error is printed), and the 6
 * reference photos through the whole network with --conv winograd against
 * ../shared/reference (PyTorch): relative L2 error at most 1e-4 at
 * block3_pool and block5_pool, the accuracy the fast engine promises.
 * Also: bn_conv_winograd_matrices, the matrices for models of the engine,
 * form an exact F(6x6, 3x3) (test_matrices); and an image moved by one tile
 * in a larger one gives the same bytes (test_translation).
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <strings.h>
#include <unistd.h>

/* Run engine e with `threads` threads; out must be fully written. */
static int run(bn_conv_engine e, int threads, const float *in, const float *k, const float *bias,
               float *out, int n, int h, int w, int cin, int cout) {
    bn_error err;
    int rc =
        support_conv_run(e, BN_PRECISION_FP32, threads, in, k, bias, out, n, h, w, cin, cout, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

/* forward (pool 0) or forward_pool (pool 1) of n images with the current
 * build, 2 threads, into out. */
static void forward_n(bn_conv *c, const float *in, float *out, int n, int h, int w, int pool) {
    bn_cpu_set_threads(2);
    support_conv_forward(c, in, out, n, h, w, pool);
}

/* Where the AVX-512 build runs, the AVX2 build (forced) against its output
 * `want`: conv (pool 0) or conv + pool (pool 1), 2 threads. The same
 * operations in the same order (their multiply-adds written out, conv.h's
 * "winograd" for both): the same bytes. tests/test_winograd_spec.c holds
 * each to a scalar model of those operations, on any host. */
static int avx2_identical, avx2_compared;
static void check_avx2_same(const support_layer *l, int n, int h, int w, int cin, int cout,
                            int pool, const float *want, size_t nwant) {
    if (bn_conv_winograd_isa() != BN_WINOGRAD_AVX512)
        return; /* AVX2 is the default here (checked by the callers), or absent */
    setenv("BN_WINOGRAD_ISA", "avx2", 1);
    CHECK(bn_conv_winograd_isa() == BN_WINOGRAD_AVX2);
    CHECK_STR(bn_conv_engine_id(BN_CONV_WINOGRAD), "winograd");
    bn_conv *c;
    bn_error err;
    if (bn_conv_create(&c, BN_CONV_WINOGRAD, cin, cout, l->k, l->bias, &err) == BN_OK) {
        float *out = malloc(nwant * sizeof *out);
        forward_n(c, l->in, out, n, h, w, pool);
        const int same = memcmp(out, want, nwant * sizeof *out) == 0;
        CHECK_MSG(same, "%sn%d %dx%d %d->%d: the AVX2 build %.3g from AVX-512 (not the same bytes)",
                  pool ? "pool " : "", n, h, w, cin, cout, support_rel_l2(out, want, nwant));
        avx2_compared++;
        avx2_identical += same;
        free(out);
        bn_conv_free(c);
    } else
        CHECK_MSG(0, "%s", err.msg);
    unsetenv("BN_WINOGRAD_ISA");
}

static void test_shape(int n, int h, int w, int cin, int cout, float input_offset) {
    /* He-like kernel scale; inputs optionally shifted positive like ReLU outputs. */
    support_layer l;
    support_layer_make(&l, n, h, w, cin, cout, 0, input_offset);
    size_t nout = l.nout;
    float *o1 = malloc(nout * sizeof *o1), *o2 = malloc(nout * sizeof *o2);
    float *o3 = malloc(nout * sizeof *o3), *od = malloc(nout * sizeof *od);
    if (run(BN_CONV_WINOGRAD, 1, l.in, l.k, l.bias, o1, n, h, w, cin, cout) ||
        run(BN_CONV_WINOGRAD, 2, l.in, l.k, l.bias, o2, n, h, w, cin, cout) ||
        run(BN_CONV_WINOGRAD, 3, l.in, l.k, l.bias, o3, n, h, w, cin, cout) ||
        run(BN_CONV_DIRECT, 2, l.in, l.k, l.bias, od, n, h, w, cin, cout))
        goto done;

    size_t written = 0;
    for (size_t i = 0; i < nout; i++)
        written += !isnan(o1[i]);
    CHECK_INT(written, nout);
    /* Per element: within 1e-4 of the scale of its terms. */
    size_t first, bad = support_layer_off(&l, o1, 1e-4, 1e-6, &first);
    CHECK_MSG(bad == 0, "n%d %dx%d %d->%d: %zu elements off, first at %zu: %.9g vs %.9g (scale %g)",
              n, h, w, cin, cout, bad, first, o1[first], l.ref[first], l.absum[first]);
    double e = support_layer_rel_l2(&l, o1), ed = support_layer_rel_l2(&l, od);
    CHECK_MSG(e <= 5e-5, "n%d %dx%d %d->%d: rel L2 %.3g vs naive", n, h, w, cin, cout, e);
    CHECK_MSG(ed <= 1e-6, "n%d %dx%d %d->%d: direct engine rel L2 %.3g", n, h, w, cin, cout, ed);
    CHECK_MSG(memcmp(o1, o2, nout * sizeof *o1) == 0, "n%d %dx%d %d->%d: 1 vs 2 threads differ", n,
              h, w, cin, cout);
    CHECK_MSG(memcmp(o1, o3, nout * sizeof *o1) == 0, "n%d %dx%d %d->%d: 1 vs 3 threads differ", n,
              h, w, cin, cout);
    printf("n%d %3dx%-3d %3d->%-3d rel L2 winograd %.2e direct %.2e\n", n, h, w, cin, cout, e, ed);
    check_avx2_same(&l, n, h, w, cin, cout, 0, o1, nout);
done:
    support_layer_free(&l);
    free(o1);
    free(o2);
    free(o3);
    free(od);
}

/* Conv + pool in one call (bn_conv_forward_pool): Winograd's fused pass and
 * the direct engine's fallback (forward, then bn_conv_maxpool2x2) against the
 * naive convolution pooled in double. Even sizes, tiles that do and do not
 * fit, batches. */
static void test_pool(int n, int h, int w, int cin, int cout) {
    support_layer l;
    support_layer_make(&l, n, h, w, cin, cout, 0, 0.3f);
    const size_t npool = l.nout / 4;
    const float *in = l.in, *k = l.k, *bias = l.bias;
    const double *ref = l.ref, *absum = l.absum;
    double *pref = malloc(npool * sizeof *pref), *pabs = malloc(npool * sizeof *pabs);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h / 2; y++)
            for (int x = 0; x < w / 2; x++)
                for (int co = 0; co < cout; co++) {
                    double m = -1, a = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            size_t o = (((size_t)b * h + 2 * y + dy) * w + 2 * x + dx) * cout + co;
                            m = ref[o] > m ? ref[o] : m;
                            a = absum[o] > a ? absum[o] : a;
                        }
                    size_t o = (((size_t)b * (h / 2) + y) * (w / 2) + x) * cout + co;
                    pref[o] = m;
                    pabs[o] = a;
                }
    const bn_conv_engine engines[2] = {BN_CONV_WINOGRAD, BN_CONV_DIRECT};
    for (int e = 0; e < 2; e++) {
        bn_cpu_set_threads(2);
        bn_conv *c;
        bn_error err;
        int rc = bn_conv_create(&c, engines[e], cin, cout, k, bias, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (rc)
            break;
        void *ws = support_ws_alloc(bn_conv_workspace_pool(c, n, h, w));
        float *out = malloc(npool * sizeof *out);
        for (size_t i = 0; i < npool; i++)
            out[i] = NAN;
        bn_conv_forward_pool(c, in, out, n, h, w, ws);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < npool; i++)
            if (!(fabs(out[i] - pref[i]) <= 1e-4 * pabs[i] + 1e-6))
                if (bad++ == 0)
                    first = i;
        CHECK_MSG(bad == 0, "pool %s n%d %dx%d %d->%d: %zu off, first at %zu: %.9g vs %.9g",
                  bn_conv_engine_name(engines[e]), n, h, w, cin, cout, bad, first, out[first],
                  pref[first]);
        if (engines[e] == BN_CONV_WINOGRAD)
            check_avx2_same(&l, n, h, w, cin, cout, 1, out, npool);
        double el = support_rel_l2_exact(out, pref, npool);
        CHECK_MSG(el <= 5e-5, "pool %s: rel L2 %g", bn_conv_engine_name(engines[e]), el);
        printf("pool %-8s n%d %3dx%-3d %3d->%-3d rel L2 %.2e\n", bn_conv_engine_name(engines[e]), n,
               h, w, cin, cout, el);
        free(out);
        free(ws);
        bn_conv_free(c);
    }
    support_layer_free(&l);
    free(pref);
    free(pabs);
}

/* Where a pixel falls in the tile grid does not change its bytes: the image
 * placed 6 pixels (one tile) right and down in a larger one, zeros around,
 * gives bitwise the same outputs there. Its tiles on the edges (the input
 * transform's pixel-by-pixel path, the output's partial tiles) then run as
 * inner tiles (the fast paths): the two paths must round alike. They once
 * did not: a loop unrolled in the AVX2 build's edge path let the compiler
 * fuse the transform's multiply-adds differently there, and the vectors of
 * photos moved by 5e-6 with no test noticing (the inputs here have full
 * 24-bit mantissas: values of 16 bits or fewer multiply exactly, fused or
 * not, and hide it). Checked for every build that runs here (the AVX-512
 * build's edge loop is unrolled too: its multiply-adds are written out, so
 * unrolling cannot change them). */
static void test_translation(int h, int w, int cin, int cout, int pool) {
    const int H = h + 18, W = w + 18, d = pool ? 2 : 1;
    support_layer l;
    support_layer_make(&l, 1, h, w, cin, cout, 0, 0.5f);
    float *big = calloc((size_t)H * W * cin, sizeof *big);
    for (int y = 0; y < h; y++)
        memcpy(big + ((size_t)(y + 6) * W + 6) * cin, l.in + (size_t)y * w * cin,
               (size_t)w * cin * sizeof *big);
    const size_t no = (size_t)(h / d) * (w / d) * cout, nbig = (size_t)(H / d) * (W / d) * cout;
    float *o = malloc(no * sizeof *o), *ob = malloc(nbig * sizeof *ob);
    static const char *const isas[] = {"default", "avx2", "portable"};
    for (int b = 0; b < 3; b++) {
        if (b == 0 && bn_conv_winograd_isa() != BN_WINOGRAD_AVX512)
            continue; /* the AVX2 build is the default here, or none */
        if (b == 1 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))
            continue;
        if (b > 0)
            setenv("BN_WINOGRAD_ISA", isas[b], 1);
        bn_conv *c;
        bn_error err;
        if (bn_conv_create(&c, BN_CONV_WINOGRAD, cin, cout, l.k, l.bias, &err) != BN_OK) {
            CHECK_MSG(0, "%s", err.msg);
            break;
        }
        forward_n(c, l.in, o, 1, h, w, pool);
        forward_n(c, big, ob, 1, H, W, pool);
        bn_conv_free(c);
        unsetenv("BN_WINOGRAD_ISA");
        long differ = 0;
        for (int y = 0; y < h / d; y++)
            for (int x = 0; x < w / d; x++)
                differ += memcmp(o + ((size_t)y * (w / d) + x) * cout,
                                 ob + ((size_t)(y + 6 / d) * (W / d) + x + 6 / d) * cout,
                                 (size_t)cout * sizeof *o) != 0;
        CHECK_MSG(differ == 0, "%s build, %dx%d %d->%d%s: %ld of %d pixels moved with the image",
                  isas[b], h, w, cin, cout, pool ? " pool" : "", differ, (h / d) * (w / d));
    }
    free(o);
    free(ob);
    free(big);
    support_layer_free(&l);
}

/* Each layer of the network, Winograd against direct on the same input. */
static void test_layers(const bn_vgg16_weights *w, const float *img) {
    static const int pool_after[BN_VGG16_NCONV] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
    int s = 224;
    size_t cap = (size_t)s * s * 64;
    float *x = malloc(cap * sizeof *x), *yd = malloc(cap * sizeof *yd);
    float *yw = malloc(cap * sizeof *yw);
    memcpy(x, img, (size_t)s * s * 3 * sizeof *x);
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        const bn_conv_weights *cw = &w->conv[i];
        bn_conv *cd, *cwg;
        bn_error err;
        int rc = bn_conv_create(&cd, BN_CONV_DIRECT, cw->cin, cw->cout, cw->kernel, cw->bias, &err);
        rc = rc ? rc
                : bn_conv_create(&cwg, BN_CONV_WINOGRAD, cw->cin, cw->cout, cw->kernel, cw->bias,
                                 &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (rc)
            break;
        size_t a = bn_conv_workspace(cd, 1, s, s), b = bn_conv_workspace(cwg, 1, s, s);
        void *ws = support_ws_alloc(a > b ? a : b);
        bn_conv_forward(cd, x, yd, 1, s, s, ws);
        bn_conv_forward(cwg, x, yw, 1, s, s, ws);
        size_t n = (size_t)s * s * cw->cout;
        double e = support_rel_l2(yw, yd, n);
        printf("layer %-13s %3dx%-3d %3d->%-3d winograd vs direct: rel L2 %.2e\n",
               bn_vgg16_convs[i].name, s, s, cw->cin, cw->cout, e);
        /* Observed 2e-7 (block1) to 1.6e-6 (block5), AVX-512 and portable
         * builds alike: 5e-6 leaves 3x for other CPUs, and still fails for a
         * wrong transform or a dropped term (errors of 1e-3 and more). */
        CHECK_MSG(e <= 5e-6, "%s: rel L2 %g", bn_vgg16_convs[i].name, e);
        free(ws);
        bn_conv_free(cd);
        bn_conv_free(cwg);
        if (pool_after[i]) {
            bn_conv_maxpool2x2(yd, x, 1, s, s, cw->cout);
            s /= 2;
        } else {
            memcpy(x, yd, n * sizeof *x);
        }
    }
    free(x);
    free(yd);
    free(yw);
}

/* The reference photos through the network built with `engine`. */
static void test_reference(const bn_vgg16_weights *w, const float *in, bn_conv_engine engine) {
    bn_vgg16 *net;
    bn_error err;
    int rc = bn_vgg16_create(&net, w, engine, SUPPORT_REF_SIZE, SUPPORT_NREF, BN_LAYER_BLOCK5_POOL,
                             &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    CHECK_INT(
        /* Observed 2.5e-6 to 3.7e-6 (Winograd), 8e-7 (direct): 1.2e-5 is 3x. */
        support_ref_compare(net, in, shared_path("reference"), bn_conv_engine_name(engine), 1.2e-5),
        0);
    bn_vgg16_free(net);
}

static void test_network(void) {
    bn_vgg16_weights w;
    bn_error err;
    int rc = bn_weights_load(&w, shared_path("models/vgg16_random_notop.h5"), &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    float *in = support_ref_inputs(shared_path("reference"));
    CHECK(in != NULL);
    if (in) {
        bn_cpu_set_threads(2);
        test_layers(&w, in);
        test_reference(&w, in, BN_CONV_WINOGRAD);
        test_reference(&w, in, BN_CONV_AUTO);
    }
    free(in);
    bn_weights_free(&w);
}

/* bn_conv_winograd_matrices (the engine's G, B^T, A^T, for models of its
 * arithmetic such as bench/precision_model.c): F(6x6, 3x3) through them in
 * double equals the convolution's definition to rounding (a wrong entry
 * leaves errors of order 1), and in float it lands as close to the
 * definition as the engine does. */
static void test_matrices(void) {
    double G[8][3], BT[8][8], AT[6][8];
    bn_conv_winograd_matrices(G, BT, AT);
    enum { H = 12, W = 18, CIN = 5, COUT = 3 };
    float in[H * W * CIN], k[9 * CIN * COUT], bias[COUT], out[H * W * COUT];
    double ref[H * W * COUT], model[H * W * COUT];
    for (int i = 0; i < H * W * CIN; i++)
        in[i] = support_rnd();
    for (int i = 0; i < 9 * CIN * COUT; i++)
        k[i] = support_rnd();
    for (int i = 0; i < COUT; i++)
        bias[i] = support_rnd();
    support_naive_conv(in, k, bias, ref, NULL, 1, H, W, CIN, COUT);
    for (int ty = 0; ty < H / 6; ty++)
        for (int tx = 0; tx < W / 6; tx++)
            for (int co = 0; co < COUT; co++) {
                double m[8][8] = {{0}};
                for (int ci = 0; ci < CIN; ci++) {
                    double d[8][8], v[8][8], u[8][8], gt[8][3];
                    for (int a = 0; a < 8; a++)
                        for (int b = 0; b < 8; b++) {
                            int y = ty * 6 - 1 + a, x = tx * 6 - 1 + b;
                            d[a][b] = y >= 0 && y < H && x >= 0 && x < W
                                          ? in[(y * W + x) * CIN + ci]
                                          : 0.0;
                        }
                    for (int i = 0; i < 8; i++) /* V = B^T d B */
                        for (int j = 0; j < 8; j++) {
                            v[i][j] = 0;
                            for (int a = 0; a < 8; a++)
                                for (int b = 0; b < 8; b++)
                                    v[i][j] += BT[i][a] * d[a][b] * BT[j][b];
                        }
                    for (int i = 0; i < 8; i++) /* U = G g G^T */
                        for (int kx = 0; kx < 3; kx++) {
                            gt[i][kx] = 0;
                            for (int ky = 0; ky < 3; ky++)
                                gt[i][kx] += G[i][ky] * k[((ky * 3 + kx) * CIN + ci) * COUT + co];
                        }
                    for (int i = 0; i < 8; i++)
                        for (int j = 0; j < 8; j++) {
                            u[i][j] = 0;
                            for (int kx = 0; kx < 3; kx++)
                                u[i][j] += gt[i][kx] * G[j][kx];
                            m[i][j] += v[i][j] * u[i][j];
                        }
                }
                for (int a = 0; a < 6; a++) /* Y = A^T M A */
                    for (int b = 0; b < 6; b++) {
                        double y = bias[co];
                        for (int i = 0; i < 8; i++)
                            for (int j = 0; j < 8; j++)
                                y += AT[a][i] * m[i][j] * AT[b][j];
                        model[((ty * 6 + a) * W + tx * 6 + b) * COUT + co] = y > 0 ? y : 0;
                    }
            }
    double num = 0, den = 0;
    for (int i = 0; i < H * W * COUT; i++) {
        num += (model[i] - ref[i]) * (model[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    CHECK_MSG(den > 0 && sqrt(num / den) < 1e-12,
              "matrices: F(6x6) in double %.3g from the definition", sqrt(num / den));
    /* and the engine agrees with both */
    if (run(BN_CONV_WINOGRAD, 1, in, k, bias, out, 1, H, W, CIN, COUT) == 0)
        CHECK_MSG(support_rel_l2_exact(out, model, H * W * COUT) < 1e-5,
                  "matrices: engine %.3g from the model",
                  support_rel_l2_exact(out, model, H * W * COUT));
}

/* bench/bench_products' measurement: a rate for every precision this CPU
 * runs natively, at odd shapes too (cin 3, cout not a multiple of 32, the
 * first block short of a whole batch) in the AVX-512 or the AVX2 build, and
 * 0 where it cannot run (the portable build; BF16 and FP16 without AVX-512); under the
 * sanitizer builds it also checks that it stays inside what it allocates. */
static void test_products_bench(void) {
    static const int shapes[][5] = {{3, 20, 1, 13, 17}, {40, 208, 2, 9, 10}, {64, 64, 2, 30, 30}};
    const bn_precision precs[] = {BN_PRECISION_FP32, BN_PRECISION_BF16, BN_PRECISION_FP16};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t q = 0; q < sizeof precs / sizeof precs[0]; q++) {
            const int *sh = shapes[s];
            int runs = bn_conv_winograd_isa() != BN_WINOGRAD_PORTABLE &&
                       bn_conv_winograd_has_precision(precs[q]);
            for (int same = 0; same < 2; same++) {
                double g = bn_conv_winograd_products_gmacs(precs[q], sh[0], sh[1], sh[2], sh[3],
                                                           sh[4], same, 1, 0.001);
                if (runs)
                    CHECK(g > 0);
                else
                    CHECK(g == 0);
            }
        }
    CHECK(bn_conv_winograd_products_gmacs(BN_PRECISION_FP32, 0, 32, 1, 6, 6, 0, 1, 0.001) == 0);
}

/* bench_transforms' measurement: runs for any build and shape (pooled, odd
 * channel counts, several blocks) and counts the edge tiles: at 14x14 eight
 * of the nine tiles cross an edge; at 26x26 the 3x3 inner ones of 5x5 do
 * not; with cin not a multiple of 16 every tile takes the edge path. */
static void test_transforms_bench(void) {
    static const struct {
        int cin, cout, n, h, w, pool;
        double edge;
    } shapes[] = {
        {16, 32, 2, 14, 14, 0, 8.0 / 9},
        {64, 48, 3, 26, 26, 1, 16.0 / 25},
        {3, 20, 1, 26, 26, 0, 1.0},
        {512, 64, 1, 50, 46, 0, 30.0 / 72},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double tin = -1, tout = -1, edge = -1;
        CHECK_INT(bn_conv_winograd_transforms_time(shapes[i].cin, shapes[i].cout, shapes[i].n,
                                                   shapes[i].h, shapes[i].w, shapes[i].pool, 1,
                                                   &tin, &tout, &edge),
                  BN_OK);
        CHECK(tin > 0 && tout > 0);
        CHECK_MSG(edge == shapes[i].edge, "shape %zu: edge share %g, not %g", i, edge,
                  shapes[i].edge);
    }
    double t1, t2, e;
    CHECK_INT(bn_conv_winograd_transforms_time(16, 32, 1, 7, 7, 1, 1, &t1, &t2, &e), BN_EINVAL);
    CHECK_INT(bn_conv_winograd_transforms_time(0, 32, 1, 6, 6, 0, 1, &t1, &t2, &e), BN_EINVAL);
}

int main(int argc, char **argv) {
    CHECK(support_use_fast_blas(argv) == 0);
    (void)argc;
    test_shape(1, 6, 6, 16, 32, 0.0f);     /* one whole tile */
    test_shape(1, 1, 1, 16, 32, 0.0f);     /* one pixel: only the centre tap */
    test_shape(1, 7, 5, 16, 32, 0.0f);     /* overhanging tiles on both edges */
    test_shape(2, 13, 19, 32, 64, 0.5f);   /* batch, non-square, not multiples of 6 */
    test_shape(3, 12, 12, 64, 64, 0.5f);   /* batch of 3, exact tiles */
    test_shape(1, 8, 8, 3, 64, 0.0f);      /* cin not a multiple of 16 (first VGG layer) */
    test_shape(2, 9, 10, 48, 20, 0.0f);    /* cout not a multiple of 16 */
    test_shape(1, 2, 40, 16, 96, 0.5f);    /* thin image, 3 output blocks for 2 threads */
    test_shape(1, 50, 46, 512, 32, 0.5f);  /* 72 tiles: several blocks (double buffer) */
    test_shape(2, 14, 14, 256, 128, 0.5f); /* VGG block-5-like geometry, batch 2 */
    test_shape(2, 60, 60, 64, 64, 0.5f);   /* small kernel, many blocks: private blocks */
    test_shape(5, 14, 14, 32, 32, 0.5f);   /* images side by side on the tile canvas */
    test_shape(7, 8, 10, 16, 32, 0.5f);    /* a grid of images with an empty slot */
    /* Every tile count from 1 to 30 in one block: the AVX2 kernel takes a
     * block's rows in groups of 5 and 6 (wg_kernel8_rows), each count its
     * own grouping; the AVX-512 kernel, 14-row blocks and every remainder. */
    for (int t = 1; t <= 30; t++)
        test_shape(1, 6, 6 * t, 16, 32, 0.5f);

    test_pool(1, 6, 6, 16, 32);   /* one tile, 3x3 pooled */
    test_pool(2, 14, 10, 32, 64); /* overhanging tiles (2 rows, 4 columns) */
    test_pool(1, 2, 2, 16, 32);   /* one pooled pixel */
    test_pool(1, 24, 20, 3, 40);  /* cin and cout not multiples of 16 */
    test_pool(3, 12, 18, 64, 64); /* batch of 3, exact tiles */
    test_pool(7, 14, 14, 16, 32); /* 2x4 canvas of images, one slot empty */
    test_pool(8, 4, 6, 16, 32);   /* tiles spanning several images and gaps */

    test_translation(20, 26, 16, 32, 0);  /* overhang on the right and below */
    test_translation(24, 18, 64, 48, 0);  /* exact tiles; cout not a multiple of 32 */
    test_translation(14, 14, 128, 32, 1); /* fused pool, overhang */
    test_translation(28, 30, 32, 64, 1);  /* fused pool */

    test_products_bench();
    test_transforms_bench();
    if (avx2_compared)
        printf("AVX2 build against AVX-512: %d of %d outputs the same bytes\n", avx2_identical,
               avx2_compared);

    /* The portable build (machines without AVX-512), forced here. */
    setenv("BN_WINOGRAD_PORTABLE", "1", 1);
    test_shape(2, 13, 19, 32, 64, 0.5f);
    test_shape(1, 8, 8, 3, 64, 0.0f);
    test_shape(2, 60, 60, 64, 64, 0.5f);
    test_pool(7, 14, 14, 16, 32);
    unsetenv("BN_WINOGRAD_PORTABLE");
    test_matrices();

    /* Argument errors and names. */
    bn_conv *c;
    bn_error err;
    float kz[9 * 16 * 64] = {0}, bz[64] = {0};
    CHECK_INT(bn_conv_create(&c, BN_CONV_WINOGRAD, 0, 32, kz, bz, &err), BN_EINVAL);
    bn_conv_engine e;
    CHECK_INT(bn_conv_engine_parse("winograd", &e), BN_OK);
    CHECK_INT(e, BN_CONV_WINOGRAD);
    /* AUTO takes Winograd wherever its AVX-512 or AVX2 code runs, except for
     * cin <= 4 with AVX-512 (the small engine: tests/test_conv_small.c). */
    const char *isa = getenv("BN_WINOGRAD_ISA"); /* a forced portable build: no vectors */
    const int vec = (__builtin_cpu_supports("avx512f") ||
                     (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) &&
                    !(isa && !strcmp(isa, "portable"));
    if (bn_conv_create(&c, BN_CONV_AUTO, 16, 64, kz, bz, &err) == BN_OK) {
        CHECK_INT(bn_conv_engine_of(c), vec ? BN_CONV_WINOGRAD : BN_CONV_DIRECT);
        bn_conv_free(c);
    } else
        CHECK_MSG(0, "%s", err.msg);
    if (bn_conv_create(&c, BN_CONV_WINOGRAD, 3, 64, kz, bz, &err) == BN_OK) {
        CHECK_INT(bn_conv_engine_of(c), BN_CONV_WINOGRAD);
        bn_conv_free(c);
    } else
        CHECK_MSG(0, "%s", err.msg);

    test_network();
    return check_done();
}
