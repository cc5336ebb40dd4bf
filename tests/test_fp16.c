/*
 * test_fp16.c: the FP16 Winograd products (winograd_fp16.h, --precision
 * fp16). On CPUs without avx512_fp16 they run in software
 * (BN_FP16_EMULATE, set here); on CPUs with it, both run and must agree.
 *
 * 1. The software FMA (f16_fma.h), lane by lane, against the exact sum in
 *    binary128 rounded to nearest even by a search over binary16 values:
 *    random operands of every magnitude, ties, subnormals, overflow, zeros'
 *    signs, Inf and NaN. It is what stands for vfmadd231ph where that
 *    instruction is missing, so it must be the instruction bit for bit.
 * 2. Layers at odd shapes (cin = 3, 40, 112: padding channels; cout = 20;
 *    several blocks; V past the caches) against the naive convolution in
 *    double: relative L2 between 1e-5 (the products really ran in binary16)
 *    and 2e-2 (F(6x6) in FP16 measures 4e-3 to 1e-2 per layer on these
 *    uniform inputs, BF16 2e-2 to 3e-2; on photos 2e-3 to 3e-3), every
 *    element within 0.05 of the scale of its terms; 1, 2 and 3 threads give
 *    the same bytes.
 * 3. The scaling guarantee: a bias-free layer's input times 2^40 or 2^-40
 *    (far outside binary16's range, 6e-8 to 65504) and its kernel times
 *    2^-30 give exactly the output times the same power: no overflow, no
 *    flush to zero, the same roundings.
 * 4. With avx512_fp16: the instruction and the emulation give the same
 *    bytes on every layer above (skipped, and said, elsewhere).
 * 5. The network (shared VGG16 weights) at 32 pixels: FP16 against the
 *    exact engine, and each image alone bitwise equal to itself in batches
 *    of 1..3 at 1 thread and 2..3 at 2 threads.
 * 6. bn_precision_resolve: fp16 is accepted exactly when it can run, says
 *    when it is emulated, and `fast` never picks the emulation.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "f16_fma.h"
#include "precision.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. the software FMA ------------------------------------------------- */

static __float128 f16_exact(uint16_t h) {
    return (__float128)bn_f16_float(h);
}

/* x rounded to binary16 by search: the nearest finite value, ties to the even
 * mantissa, Inf past 65520 (where IEEE rounding overflows). */
static uint16_t f16_nearest(__float128 x) {
    if (x != x)
        return 0x7e00;
    uint16_t sign = x < 0 || (x == 0 && __builtin_signbit((double)x)) ? 0x8000 : 0;
    __float128 a = x < 0 ? -x : x;
    if (a >= 65520)
        return sign | 0x7c00;
    /* bisection over the ordered magnitudes 0..0x7bff */
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (f16_exact(mid) <= a)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    uint16_t best = lo; /* 65504 up to 65520: 65504 */
    if (lo < 0x7bff) {
        __float128 dlo = a - f16_exact(lo), dhi = f16_exact((uint16_t)(lo + 1)) - a;
        if (dhi < dlo || (dhi == dlo && (lo & 1)))
            best = (uint16_t)(lo + 1);
    }
    return sign | best;
}

static uint16_t f16_fma_ref(uint16_t a, uint16_t b, uint16_t c) {
    float fa = bn_f16_float(a), fb = bn_f16_float(b), fc = bn_f16_float(c);
    if (isnan(fa) || isnan(fb) || isnan(fc))
        return 0x7e00;
    if (isinf(fa) || isinf(fb) || isinf(fc)) {
        float r = fa * fb + fc; /* Inf arithmetic is exact */
        return isnan(r) ? 0x7e00 : (r < 0 ? 0xfc00 : 0x7c00);
    }
    __float128 s = f16_exact(a) * f16_exact(b) + f16_exact(c); /* exact: 80 bits at most */
    if (s == 0) {
        /* IEEE: an exact zero sum is +0 unless both terms are -0 (or a -0 product and -0) */
        int pneg = (__builtin_signbit(fa) != 0) != (__builtin_signbit(fb) != 0);
        return pneg && __builtin_signbit(fc) ? 0x8000 : 0;
    }
    return f16_nearest(s);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint16_t rnd16(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint16_t)(rng >> 24);
}

static void test_fma(void) {
    long bad = 0, n = 0;
    uint16_t first[3] = {0, 0, 0};
    /* operands near each other's magnitude make ties and cancellations
     * common; fully random ones cover the rest */
    for (long i = 0; i < 3000000; i++) {
        uint16_t a = rnd16(), b = rnd16(), c = rnd16();
        if (i % 3 == 1) { /* c near a b: exponents chosen to collide */
            a = (uint16_t)((a & 0x83ff) | 0x3c00);
            c = (uint16_t)((c & 0x803f) | (b & 0x7fc0));
        } else if (i % 3 == 2) { /* small: subnormal products and sums */
            a &= 0x87ff;
            b &= 0x8fff;
            c &= 0x83ff;
        }
        uint16_t got = bn_f16_fma(bn_f16_float(a), bn_f16_float(b), c);
        uint16_t want = f16_fma_ref(a, b, c);
        int same = got == want || ((got & 0x7fff) > 0x7c00 && (want & 0x7fff) > 0x7c00);
        if (!same && bad++ == 0) {
            first[0] = a;
            first[1] = b;
            first[2] = c;
        }
        n++;
    }
    /* exact halves: 1 + 2^-11 (a tie between 1 and 1 + 2^-10) from 1 x 1 + 2^-11 */
    CHECK_INT(bn_f16_fma(1.0f, 1.0f, 0x1000), 0x3c00);      /* 1 + 2^-11: even, down */
    CHECK_INT(bn_f16_fma(1.0f, 1.0f, 0x1001), 0x3c01);      /* 2^-21 above the tie: up */
    CHECK_INT(bn_f16_fma(65504.0f, 1.0f, 0x4c00), 0x7c00);  /* 65504 + 16: Inf */
    CHECK_INT(bn_f16_fma(65504.0f, 1.0f, 0x4bff), 0x7bff);  /* just below: 65504 */
    CHECK_INT(bn_f16_fma(-1.0f, 1.0f, 0x3c00), 0x0000);     /* 1 - 1 = +0 */
    CHECK_INT(bn_f16_fma(-0.0f, 1.0f, 0x8000), 0x8000);     /* -0 + -0 = -0 */
    CHECK_INT(bn_f16_fma(0x1p-24f, 0.5f, 0x0000), 0x0000);  /* half the least: even, 0 */
    CHECK_INT(bn_f16_fma(0x1p-24f, 0.75f, 0x0000), 0x0001); /* above half: the least */
    printf("software vfmadd231ph: %ld of %ld random triples differ from the exact rounding\n", bad,
           n);
    CHECK_MSG(bad == 0, "first: a %04x b %04x c %04x: got %04x want %04x", first[0], first[1],
              first[2], bn_f16_fma(bn_f16_float(first[0]), bn_f16_float(first[1]), first[2]),
              f16_fma_ref(first[0], first[1], first[2]));
}

/* ---- 2-4. layers --------------------------------------------------------- */

static int native; /* avx512_fp16 here: the instruction runs too */

/* One FP16 layer, emulated or by the instruction, into out. */
static int run(int emulate, int threads, const float *in, const float *k, const float *bias,
               float *out, int n, int h, int w, int cin, int cout) {
    bn_error err;
    setenv("BN_FP16_EMULATE", emulate ? "1" : "0", 1);
    int rc = support_conv_run(BN_CONV_WINOGRAD, BN_PRECISION_FP16, threads, in, k, bias, out, n, h,
                              w, cin, cout, &err);
    setenv("BN_FP16_EMULATE", native ? "0" : "1", 1);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return rc;
}

static void test_layer(int n, int h, int w, int cin, int cout) {
    support_layer l;
    support_layer_make(&l, n, h, w, cin, cout, 1, 0);
    const size_t nin = l.nin, nout = l.nout;
    const float *in = l.in, *k = l.k, *bias = l.bias;
    float *zero = calloc(cout, sizeof *zero);
    float *o1 = malloc(nout * sizeof *o1), *o2 = malloc(nout * sizeof *o2);
    float *o3 = malloc(nout * sizeof *o3);
    float *in2 = malloc(nin * sizeof *in2), *k2 = malloc((size_t)9 * cin * cout * sizeof *k2);
    if (run(!native, 1, in, k, bias, o1, n, h, w, cin, cout) ||
        run(!native, 2, in, k, bias, o2, n, h, w, cin, cout) ||
        run(!native, 3, in, k, bias, o3, n, h, w, cin, cout))
        goto done;
    size_t first, bad = support_layer_off(&l, o1, 0.05, 1e-4, &first);
    double e = support_layer_rel_l2(&l, o1);
    printf("fp16 n%d %3dx%-3d %3d->%-3d rel L2 vs naive %.2e\n", n, h, w, cin, cout, e);
    CHECK_MSG(e <= 2e-2 && e >= 1e-5, "n%d %dx%d %d->%d: rel L2 %.3g", n, h, w, cin, cout, e);
    CHECK_MSG(bad == 0, "n%d %dx%d %d->%d: %zu elements off, first %zu: %g vs %g (scale %g)", n, h,
              w, cin, cout, bad, first, o1[first], l.ref[first], l.absum[first]);
    CHECK_MSG(!memcmp(o1, o2, nout * sizeof *o1), "n%d %dx%d %d->%d: 1 vs 2 threads", n, h, w, cin,
              cout);
    CHECK_MSG(!memcmp(o1, o3, nout * sizeof *o1), "n%d %dx%d %d->%d: 1 vs 3 threads", n, h, w, cin,
              cout);

    /* 4. the instruction against its emulation */
    if (native) {
        if (run(1, 2, in, k, bias, o2, n, h, w, cin, cout) == 0)
            CHECK_MSG(!memcmp(o1, o2, nout * sizeof *o1),
                      "n%d %dx%d %d->%d: vfmadd231ph and its emulation differ", n, h, w, cin, cout);
    }

    /* 3. scaling: input x 2^40 and x 2^-40, kernel x 2^-30, no bias */
    static const int powers[][2] = {{40, 0}, {-40, 0}, {0, -30}, {40, -30}};
    if (run(!native, 2, in, k, zero, o1, n, h, w, cin, cout))
        goto done;
    for (int t = 0; t < 4; t++) {
        int pin = powers[t][0], pk = powers[t][1];
        for (size_t i = 0; i < nin; i++)
            in2[i] = ldexpf(in[i], pin);
        for (size_t i = 0; i < (size_t)9 * cin * cout; i++)
            k2[i] = ldexpf(k[i], pk);
        if (run(!native, 2, in2, k2, zero, o2, n, h, w, cin, cout))
            goto done;
        size_t off = 0;
        for (size_t i = 0; i < nout; i++)
            off += ldexpf(o1[i], pin + pk) != o2[i];
        CHECK_MSG(off == 0,
                  "n%d %dx%d %d->%d: input x 2^%d, kernel x 2^%d: %zu of %zu outputs are "
                  "not the output x 2^%d",
                  n, h, w, cin, cout, pin, pk, off, nout, pin + pk);
    }
done:
    support_layer_free(&l);
    free(zero);
    free(o1);
    free(o2);
    free(o3);
    free(in2);
    free(k2);
}

/* ---- 5. the network ------------------------------------------------------ */

#define NIMG 3
static bn_vgg16_weights weights;

static void forward(bn_vgg16 *net, const float *in, int s, int first, int n, float *out) {
    bn_error err;
    int rc = support_net_batch(net, in, NIMG, s, first, n, out, &err);
    CHECK_MSG(rc == BN_OK, "forward of %d: %s", n, err.msg);
}

static void test_network(int s) {
    size_t dim = (size_t)bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, s);
    float *in = support_smooth_images(NIMG, s);
    float *alone = malloc(NIMG * dim * sizeof *alone), *exact = malloc(NIMG * dim * sizeof *exact);
    float *out = malloc(NIMG * dim * sizeof *out);
    char id[64];
    double worst = support_net_alone_vs_exact(&weights, BN_CONV_AUTO, BN_PRECISION_FP16, s, in,
                                              NIMG, alone, exact, id);
    CHECK_STR(id, "winograd-avx512-fp16");
    printf("size %d: fp16 network vs exact, worst relative L2 %.3g over %d images\n", s, worst,
           NIMG);
    CHECK_MSG(worst > 1e-5 && worst < 5e-2, "size %d: fp16 vs exact %.3g", s, worst);
    int first = 0;
    for (int t = 1; t <= 2; t++) {
        bn_cpu_set_threads(t);
        bn_vgg16 *net = support_net(&weights, BN_CONV_AUTO, BN_PRECISION_FP16, s, NIMG);
        for (int n = t; n <= NIMG; n++) { /* the emulation is slow: 2 threads from 2 images */
            forward(net, in, s, first, n, out);
            int bad = support_rows_differ(out, alone, NIMG, first, n, dim);
            CHECK_MSG(bad == 0, "fp16 size %d threads %d batch %d: %d differ from alone", s, t, n,
                      bad);
            first = (first + 2) % NIMG;
        }
        bn_vgg16_free(net);
    }
    bn_cpu_set_threads(0);
    free(in);
    free(alone);
    free(exact);
    free(out);
}

/* ---- 6. resolving --precision ------------------------------------------- */

static void test_resolve(void) {
    bn_precision p;
    bn_error err;
    char why[512];
    setenv("BN_FP16_EMULATE", "0", 1);
    int rc = bn_precision_resolve(BN_PRECISION_FP16, &p, why, sizeof why, &err);
    CHECK_INT(rc == BN_OK, native);
    if (rc != BN_OK) {
        printf("fp16 without emulation: %s\n", err.msg);
        CHECK(strstr(err.msg, "avx512_fp16") != NULL);
    }
    setenv("BN_FP16_EMULATE", "1", 1);
    CHECK(bn_precision_resolve(BN_PRECISION_FP16, &p, why, sizeof why, &err) == BN_OK &&
          p == BN_PRECISION_FP16);
    CHECK(strstr(why, "emulated") != NULL);
    CHECK(bn_conv_winograd_fp16_emulated());
    /* `fast` with the emulation on: never FP16 */
    const char *dir = support_mkdtemp("fp16");
    setenv("XDG_CACHE_HOME", dir, 1);
    CHECK(bn_precision_resolve(BN_PRECISION_FAST, &p, why, sizeof why, &err) == BN_OK);
    printf("fast with the FP16 emulation on: %s\n", why);
    CHECK(p != BN_PRECISION_FP16);
    support_remove_tree(dir);
    setenv("BN_FP16_EMULATE", native ? "0" : "1", 1);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    const bn_cpu_features *f = bn_cpu_features_get();
    native = f->avx512_fp16 && f->avx512;
    test_fma();
    setenv("BN_FP16_EMULATE", "1", 1);
    if (!bn_conv_winograd_has_precision(BN_PRECISION_FP16)) {
        printf("SKIP: no AVX-512 (or not a GCC build): the FP16 products cannot run here\n");
        return check_done();
    }
    test_resolve();
    setenv("BN_FP16_EMULATE", native ? "0" : "1", 1);
    printf(native ? "avx512_fp16: vfmadd231ph, checked against its emulation\n"
                  : "SKIP (part 4): no avx512_fp16 here: the products run in software only\n");
    support_seed(17);
    test_layer(1, 14, 14, 64, 64);
    test_layer(2, 20, 17, 3, 20);   /* cin 3: one chunk, 29 channels of padding; cout < 32 */
    test_layer(3, 13, 28, 112, 48); /* cin not a multiple of 32: half a chunk of padding */
    test_layer(1, 12, 19, 40, 32);  /* channels 40-63: a chunk mostly padding */
    /* several blocks; U 6 MB in FP32 terms: shared blocks and V past the
     * caches where the L2 is at most 1.5 MB */
    test_layer(2, 40, 40, 128, 192);
    char path[4096];
    bn_error err;
    snprintf(path, sizeof path, "%s", shared_path("models/vgg16_random_notop.h5"));
    if (bn_weights_load(&weights, path, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_network(32);
    bn_weights_free(&weights);
    return check_done();
}
