/*
 * test_precision.c: the reduced-precision (BF16) Winograd products, and the
 * choice behind --precision fast.
 *
 * 1. Layers: random inputs and kernels at shapes with odd and unaligned
 *    channel counts (cin = 3, 40, 112: vectors of padding channels only, whose
 *    transform the input step skips; cout = 20), several blocks, V written past
 *    the caches (large blocks) or not, against the naive convolution in
 *    double: relative L2 at most 8e-2 (BF16 keeps 8 bits: F(6x6) in BF16
 *    measures about 4e-2 per layer on random data, the bound leaves room for
 *    other CPUs' rounding of vdpbf16ps' pair sums), every element within 0.25
 *    of the scale of its terms, and at least 1e-4 (the products really ran
 *    in BF16, not FP32). 1, 2 and 3 threads give the same bytes.
 * 2. The network (the shared VGG16 weights, photos of ../shared/data) in
 *    BF16 at 32 and 64 pixels: each image alone is bitwise equal to itself in
 *    batches of 1..9 at 1, 2 and 3 threads and in every partial batch of
 *    --batch 5 and 8, as tests/test_batch.c checks FP32. Its distance to the
 *    exact engine is printed.
 * 3. bn_precision_resolve: fp32 is fp32; fp16 is refused where it cannot run;
 *    bf16 is refused exactly when the CPU lacks avx512_bf16; fast measures
 *    once, writes $XDG_CACHE_HOME/bottleneck/precision.tsv, then reads it
 *    (a cached choice edited to fp32 is obeyed: the cache, not a new
 *    measurement, decided).
 * 4. The same parts 1 and 2 for the AMX products (--precision amx: BF16's
 *    values, tdpbf16ps on tiles), where this CPU has them; and each AMX layer
 *    against the same layer in BF16 with vdpbf16ps: both multiply the same
 *    rounded V and U, so they differ only by the rounding of FP32 sums,
 *    relative L2 below 1e-5, where either is about 4e-2 from exact (an AMX
 *    kernel that read a wrong row, chunk or panel would be that far).
 * Parts 1 and 2 are skipped (and say so) on CPUs without avx512_bf16; part 4
 * on CPUs without AMX.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "precision.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reduced precision under test: BF16, then AMX. */
static bn_precision prec = BN_PRECISION_BF16;

/* One layer in prec with `threads` threads into out (NaN-filled first). */
static int run_bf16(int threads, const float *in, const float *k, const float *bias, float *out,
                    int n, int h, int w, int cin, int cout) {
    bn_error err;
    int rc = support_conv_run(BN_CONV_WINOGRAD, prec, threads, in, k, bias, out, n, h, w, cin, cout,
                              &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

static void test_layer(int n, int h, int w, int cin, int cout) {
    support_layer l;
    support_layer_make(&l, n, h, w, cin, cout, 1, 0);
    size_t nout = l.nout;
    float *o1 = malloc(nout * sizeof *o1), *o2 = malloc(nout * sizeof *o2);
    float *o3 = malloc(nout * sizeof *o3);
    if (run_bf16(1, l.in, l.k, l.bias, o1, n, h, w, cin, cout) ||
        run_bf16(2, l.in, l.k, l.bias, o2, n, h, w, cin, cout) ||
        run_bf16(3, l.in, l.k, l.bias, o3, n, h, w, cin, cout))
        goto done;
    size_t first, bad = support_layer_off(&l, o1, 0.25, 1e-3, &first);
    double e = support_layer_rel_l2(&l, o1);
    printf("%s n%d %3dx%-3d %3d->%-3d rel L2 vs naive %.2e\n", bn_precision_name(prec), n, h, w,
           cin, cout, e);
    if (prec == BN_PRECISION_AMX) { /* the same values through vdpbf16ps */
        prec = BN_PRECISION_BF16;
        int rc = run_bf16(2, l.in, l.k, l.bias, o3, n, h, w, cin, cout);
        prec = BN_PRECISION_AMX;
        if (rc)
            goto done;
        double num = 0, den = 0;
        for (size_t i = 0; i < nout; i++) {
            num += ((double)o1[i] - o3[i]) * ((double)o1[i] - o3[i]);
            den += (double)o3[i] * o3[i];
        }
        double d = den > 0 ? sqrt(num / den) : 0;
        printf("    amx vs bf16 (vdpbf16ps) rel L2 %.2e\n", d);
        CHECK_MSG(d < 1e-5, "n%d %dx%d %d->%d: amx vs bf16 %.3g", n, h, w, cin, cout, d);
        if (run_bf16(3, l.in, l.k, l.bias, o3, n, h, w, cin, cout))
            goto done;
    }
    CHECK_MSG(e <= 8e-2 && e >= 1e-4, "n%d %dx%d %d->%d: rel L2 %.3g", n, h, w, cin, cout, e);
    CHECK_MSG(bad == 0, "n%d %dx%d %d->%d: %zu elements off, first %zu: %g vs %g (scale %g)", n, h,
              w, cin, cout, bad, first, o1[first], l.ref[first], l.absum[first]);
    CHECK_MSG(!memcmp(o1, o2, nout * sizeof *o1), "n%d %dx%d %d->%d: 1 vs 2 threads", n, h, w, cin,
              cout);
    CHECK_MSG(!memcmp(o1, o3, nout * sizeof *o1), "n%d %dx%d %d->%d: 1 vs 3 threads", n, h, w, cin,
              cout);
done:
    support_layer_free(&l);
    free(o1);
    free(o2);
    free(o3);
}

#define NIMG 12
static bn_vgg16_weights weights;

/* Images [first, first + n) (mod NIMG) of in through net into out (n, dim). */
static void forward(bn_vgg16 *net, const float *in, int s, int first, int n, float *out) {
    bn_error err;
    int rc = support_net_batch(net, in, NIMG, s, first, n, out, &err);
    CHECK_MSG(rc == BN_OK, "forward of %d: %s", n, err.msg);
}

static void test_network(int s) {
    size_t dim = (size_t)bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, s);
    float *in = support_smooth_images(NIMG, s);
    float *alone = malloc(NIMG * dim * sizeof *alone), *exact = malloc(NIMG * dim * sizeof *exact);
    float *out = malloc(9 * dim * sizeof *out);
    char id[64];
    const char *pn = bn_precision_name(prec);
    double worst =
        support_net_alone_vs_exact(&weights, BN_CONV_WINOGRAD, prec, s, in, NIMG, alone, exact, id);
    /* Winograd forced on the first layer too (AUTO gives it the small engine) */
    CHECK_STR(id, prec == BN_PRECISION_AMX ? "winograd-amx-bf16-all" : "winograd-avx512-bf16-all");
    printf("size %d: %s network vs exact, worst relative L2 %.3g over %d images\n", s, pn, worst,
           NIMG);
    CHECK_MSG(worst > 1e-4 && worst < 0.5, "size %d: %s vs exact %.3g", s, pn, worst);
    int first = 0;
    bn_vgg16 *net;
    for (int t = 1; t <= 3; t++) {
        bn_cpu_set_threads(t);
        net = support_net(&weights, BN_CONV_WINOGRAD, prec, s, 9);
        for (int n = 1; n <= 9; n++) {
            forward(net, in, s, first, n, out);
            int bad = support_rows_differ(out, alone, NIMG, first, n, dim);
            CHECK_MSG(bad == 0, "%s size %d threads %d batch %d: %d differ from alone", pn, s, t, n,
                      bad);
            first = (first + 5) % NIMG;
        }
        bn_vgg16_free(net);
    }
    static const int batches[] = {5, 8};
    for (int k = 0; k < 2; k++) {
        bn_cpu_set_threads(2 + k);
        net = support_net(&weights, BN_CONV_WINOGRAD, prec, s, batches[k]);
        for (int n = 1; n <= batches[k]; n++) {
            forward(net, in, s, first, n, out);
            int bad = support_rows_differ(out, alone, NIMG, first, n, dim);
            CHECK_MSG(bad == 0, "%s size %d --batch %d, %d images: %d differ", pn, s, batches[k], n,
                      bad);
            first = (first + 3) % NIMG;
        }
        bn_vgg16_free(net);
    }
    free(in);
    free(alone);
    free(exact);
    free(out);
}

static void test_resolve(int has_bf16) {
    bn_precision p;
    bn_error err;
    char why[512];
    CHECK(bn_precision_parse("fast", &p) == BN_OK && p == BN_PRECISION_FAST);
    CHECK(bn_precision_parse("bf17", &p) == BN_EINVAL);
    CHECK(bn_precision_resolve(BN_PRECISION_FP32, &p, why, sizeof why, &err) == BN_OK &&
          p == BN_PRECISION_FP32);
    /* fp16 runs where its products can (tests/test_fp16.c), else one line */
    int rc16 = bn_precision_resolve(BN_PRECISION_FP16, &p, why, sizeof why, &err);
    CHECK_INT(rc16 == BN_OK, bn_conv_winograd_has_precision(BN_PRECISION_FP16));
    if (rc16 != BN_OK)
        CHECK(strstr(err.msg, "fp16") != NULL);
    int rc = bn_precision_resolve(BN_PRECISION_BF16, &p, why, sizeof why, &err);
    CHECK_INT(rc == BN_OK, has_bf16);

    const char *dir = support_mkdtemp("precision");
    setenv("XDG_CACHE_HOME", dir, 1);
    char cache[4096];
    snprintf(cache, sizeof cache, "%s/bottleneck/precision.tsv", dir);
    CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
    printf("fast, first time: %s\n", why);
    if (!has_bf16) {
        CHECK_INT(p, BN_PRECISION_FP32);
        CHECK(access(cache, F_OK) != 0); /* nothing to measure */
        support_remove_tree(dir);
        return;
    }
    CHECK(strstr(why, "measured") != NULL);
    /* FP16 only where vfmadd231ph runs natively: fast never picks the emulation */
    CHECK(p == BN_PRECISION_BF16 || p == BN_PRECISION_FP32 ||
          (p == BN_PRECISION_FP16 && !bn_conv_winograd_fp16_emulated()) ||
          (p == BN_PRECISION_AMX && bn_cpu_features_get()->amx_bf16));
    /* the cache: one line, key <tab> choice <tab> ratio */
    FILE *f = fopen(cache, "r");
    CHECK(f != NULL);
    char line[512] = "", key[400] = "", choice[16] = "";
    double ratio = 0;
    if (f) {
        CHECK(fgets(line, sizeof line, f) != NULL);
        fclose(f);
    }
    CHECK(sscanf(line, "%399[^\t]\t%15[^\t]\t%lf", key, choice, &ratio) == 3);
    CHECK(!strcmp(choice, bn_precision_name(p)) && ratio > 0);
    CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
    CHECK(strstr(why, "cached") != NULL);
    /* a cache that says fp32 (as on a host whose vdpbf16ps is slow) is obeyed */
    f = fopen(cache, "w");
    fprintf(f, "some other cpu|avx512=1\tbf16\t2.000\n%s\tfp32\t0.500\n", key);
    fclose(f);
    CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
    CHECK_INT(p, BN_PRECISION_FP32);
    CHECK(strstr(why, "0.50x") && strstr(why, "cached"));
    /* garbage in the cache: measured again, and the file rewritten, the
     * other host's line kept */
    f = fopen(cache, "w");
    fprintf(f, "some other cpu|avx512=1\tbf16\t2.000\n%s\tnonsense\n", key);
    fclose(f);
    CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
    CHECK(strstr(why, "measured") != NULL);
    f = fopen(cache, "r");
    int lines = 0, other = 0;
    while (f && fgets(line, sizeof line, f)) {
        lines++;
        other += !strncmp(line, "some other cpu", 14);
    }
    if (f)
        fclose(f);
    CHECK_INT(lines, 2);
    CHECK_INT(other, 1);
    /* a line of this CPU measured with older kernels (another revision, or
     * the key before revisions existed) is not trusted: measured again */
    char *rev = strstr(key, "|kernels=");
    CHECK(rev != NULL);
    if (rev) {
        for (int old = 0; old < 2; old++) {
            f = fopen(cache, "w");
            if (old == 0)
                fprintf(f, "%.*s|kernels=1\tfp32\t0.500\n", (int)(rev - key), key);
            else
                fprintf(f, "%.*s\tfp32\t0.500\n", (int)(rev - key), key);
            fclose(f);
            CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
            CHECK(strstr(why, "measured") != NULL);
        }
    }
    double g32 = bn_conv_winograd_kernel_gmacs(BN_PRECISION_FP32, 3, 0.003);
    double g16 = bn_conv_winograd_kernel_gmacs(BN_PRECISION_BF16, 3, 0.003);
    double gx = bn_conv_winograd_kernel_gmacs(BN_PRECISION_AMX, 3, 0.003);
    printf("products kernel: fp32 %.1f, bf16 %.1f, amx %.1f G multiply-adds/s (ratios %.2f, "
           "%.2f)\n",
           g32, g16, gx, g16 / g32, gx / g32);
    CHECK(g32 > 0 && g16 > 0);
    /* AMX measured exactly where it runs */
    CHECK_INT(gx > 0, bn_conv_winograd_has_precision(BN_PRECISION_AMX));
    support_remove_tree(dir);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    int has_bf16 = bn_conv_winograd_has_precision(BN_PRECISION_BF16);
    test_resolve(has_bf16);
    if (!has_bf16) {
        printf("SKIP: no avx512_bf16 here: the BF16 products were not run\n");
        return check_done();
    }
    support_seed(16);
    test_layer(1, 14, 14, 64, 64);
    test_layer(2, 20, 17, 3, 20);    /* odd cin: a pair with a zero partner; cout < 32 */
    test_layer(3, 13, 28, 112, 48);  /* cin not a multiple of 32: channels 112-127 padding */
    test_layer(2, 56, 56, 128, 256); /* U > 4 MB: shared blocks, V past the caches */
    test_layer(8, 28, 28, 256, 64);  /* several blocks */
    char path[4096];
    bn_error err;
    snprintf(path, sizeof path, "%s", shared_path("models/vgg16_random_notop.h5"));
    if (bn_weights_load(&weights, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_network(32);
    test_network(64);
    /* last, so that the random inputs above stay those of earlier versions */
    test_layer(1, 12, 19, 40, 32); /* channels 48-63 padding only, 40-47 half of a vector */
    /* A CPU with AMX runs it in this (GCC, AVX-512) build: never a silent skip */
    CHECK_INT(bn_conv_winograd_has_precision(BN_PRECISION_AMX), bn_cpu_features_get()->amx_bf16);
    if (bn_conv_winograd_has_precision(BN_PRECISION_AMX)) {
        prec = BN_PRECISION_AMX;
        test_layer(1, 14, 14, 64, 64);   /* 9 tiles: one group of 32 rows, most past the batch */
        test_layer(2, 20, 17, 3, 20);    /* cin 3: one chunk, mostly padding; cout < 32 */
        test_layer(3, 13, 28, 112, 48);  /* 4 chunks, the last half padding */
        test_layer(2, 56, 56, 128, 256); /* shared blocks, V past the caches */
        test_layer(8, 28, 28, 256, 64);  /* several blocks, the last partial */
        test_layer(1, 12, 19, 40, 32);
        test_layer(7, 30, 30, 64, 96); /* 175 tiles: groups of 32 and a partial one */
        test_network(32);
        test_network(64);
    } else {
        printf("SKIP: no AMX here (%s): the AMX products were not run\n", bn_cpu_model());
    }
    bn_weights_free(&weights);
    return check_done();
}
