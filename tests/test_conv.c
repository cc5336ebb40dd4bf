/*
 * test_conv.c: the direct convolution engine and the max pool against naive
 * loops written straight from the definitions, on random data: several
 * channel counts, square, non-square and odd sizes, batches of 1 and 3, and a
 * case large enough that the engine splits the batch into chunks in the
 * middle of an image. Also the engine names, AUTO's resolution, the thread
 * knob and argument errors.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"

#include <strings.h>

static float *rnd_array(size_t count) {
    float *p = malloc(count * sizeof *p);
    for (size_t i = 0; i < count; i++)
        p[i] = support_rnd();
    return p;
}

static void test_direct(int n, int h, int w, int cin, int cout) {
    size_t nin = (size_t)n * h * w * cin, nout = (size_t)n * h * w * cout;
    float *in = rnd_array(nin), *k = rnd_array((size_t)9 * cin * cout), *bias = rnd_array(cout);
    float *out = malloc(nout * sizeof *out);
    double *ref = malloc(nout * sizeof *ref), *absum = malloc(nout * sizeof *absum);
    for (size_t i = 0; i < nout; i++)
        out[i] = NAN; /* every element must be written */

    bn_conv *c;
    bn_error err;
    int rc = bn_conv_create(&c, BN_CONV_DIRECT, cin, cout, k, bias, &err);
    CHECK_INT(rc, BN_OK);
    if (rc)
        return;
    CHECK_INT(bn_conv_engine_of(c), BN_CONV_DIRECT);
    size_t wsb = bn_conv_workspace(c, n, h, w);
    CHECK(wsb <= ((size_t)64 << 20));
    void *ws = support_ws_alloc(wsb);
    /* The kernel and bias are copies: scribbling on ours must not matter. */
    float *k_saved = malloc((size_t)9 * cin * cout * sizeof *k_saved);
    memcpy(k_saved, k, (size_t)9 * cin * cout * sizeof *k);
    float bias0 = bias[0];
    memset(k, 0xff, (size_t)9 * cin * cout * sizeof *k);
    bias[0] = NAN;
    bn_conv_forward(c, in, out, n, h, w, ws);
    bias[0] = bias0;
    support_naive_conv(in, k_saved, bias, ref, absum, n, h, w, cin, cout);

    size_t bad = 0, zeros = 0;
    double num = 0, den = 0;
    for (size_t i = 0; i < nout; i++) {
        double d = fabs(out[i] - ref[i]);
        if (!(d <= 1e-5 * absum[i] + 1e-7))
            bad++;
        num += d * d;
        den += ref[i] * ref[i];
        zeros += ref[i] == 0;
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    CHECK_MSG(bad == 0, "n=%d h=%d w=%d cin=%d cout=%d: %zu of %zu outside tolerance", n, h, w, cin,
              cout, bad, nout);
    CHECK_MSG(rel < 1e-6, "n=%d h=%d w=%d cin=%d cout=%d: relative L2 error %.3g", n, h, w, cin,
              cout, rel);
    /* The data exercise both sides of the ReLU. */
    CHECK(zeros > 0 && zeros < nout);
    printf("direct n=%d %dx%d cin=%d cout=%d: relative L2 error %.2e (workspace %zu bytes)\n", n, h,
           w, cin, cout, rel, wsb);

    bn_conv_free(c);
    free(ws);
    free(in);
    free(k);
    free(k_saved);
    free(bias);
    free(out);
    free(ref);
    free(absum);
}

static void test_maxpool(int n, int h, int w, int c) {
    size_t nin = (size_t)n * h * w * c, nout = nin / 4;
    float *in = rnd_array(nin), *out = malloc(nout * sizeof *out);
    bn_conv_maxpool2x2(in, out, n, h, w, c);
    size_t bad = 0;
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h / 2; y++)
            for (int x = 0; x < w / 2; x++)
                for (int k = 0; k < c; k++) {
                    float m = -INFINITY;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            float v = in[(((size_t)b * h + 2 * y + dy) * w + 2 * x + dx) * c + k];
                            m = v > m ? v : m;
                        }
                    if (out[(((size_t)b * (h / 2) + y) * (w / 2) + x) * c + k] != m)
                        bad++;
                }
    CHECK_MSG(bad == 0, "maxpool n=%d %dx%d c=%d: %zu wrong", n, h, w, c, bad);
    free(in);
    free(out);
}

static void test_api(void) {
    bn_conv_engine e = BN_CONV_DIRECT;
    CHECK_INT(bn_conv_engine_parse("auto", &e), BN_OK);
    CHECK_INT(e, BN_CONV_AUTO);
    CHECK_INT(bn_conv_engine_parse("winograd", &e), BN_OK);
    CHECK_INT(e, BN_CONV_WINOGRAD);
    CHECK_INT(bn_conv_engine_parse("direct", &e), BN_OK);
    CHECK_INT(e, BN_CONV_DIRECT);
    CHECK(bn_conv_engine_parse("fast", &e) != BN_OK);
    CHECK(bn_conv_engine_parse("", &e) != BN_OK);
    CHECK(bn_conv_engine_parse(NULL, &e) != BN_OK);
    CHECK_STR(bn_conv_engine_name(BN_CONV_AUTO), "auto");
    CHECK_STR(bn_conv_engine_name(BN_CONV_DIRECT), "direct");
    CHECK_STR(bn_conv_engine_name(BN_CONV_WINOGRAD), "winograd");

    float k[9 * 2 * 3] = {0}, bias[3] = {0};
    bn_conv *c = NULL;
    bn_error err;
    bn_error_clear(&err);
    /* AUTO resolves to a concrete engine at creation. */
    CHECK_INT(bn_conv_create(&c, BN_CONV_AUTO, 2, 3, k, bias, &err), BN_OK);
    if (c)
        CHECK(bn_conv_engine_of(c) != BN_CONV_AUTO);
    bn_conv_free(c);
    bn_conv_free(NULL);

    c = (bn_conv *)&err;
    CHECK_INT(bn_conv_create(&c, BN_CONV_DIRECT, 0, 3, k, bias, &err), BN_EINVAL);
    CHECK(c == NULL);
    CHECK(strstr(err.msg, "conv") != NULL);
    CHECK_INT(bn_conv_create(&c, (bn_conv_engine)42, 2, 3, k, bias, &err), BN_EINVAL);

    /* The BLAS advice never contradicts the user nor suggests what runs. */
    const char *core = bn_cpu_blas_core(), *better = bn_cpu_blas_better_coretype();
    CHECK(core != NULL);
    if (better)
        CHECK(strcasecmp(better, core) != 0);
    printf("OpenBLAS kernels: %s; better for this CPU: %s\n", core, better ? better : "(none)");
    char *saved = getenv("OPENBLAS_CORETYPE") ? strdup(getenv("OPENBLAS_CORETYPE")) : NULL;
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    CHECK(bn_cpu_blas_better_coretype() == NULL);
    if (saved)
        setenv("OPENBLAS_CORETYPE", saved, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    free(saved);

    bn_cpu_set_threads(1);
    CHECK_INT(bn_cpu_threads(), 1);
    bn_cpu_set_threads(2);
    CHECK_INT(bn_cpu_threads(), 2);
}

int main(void) {
    support_seed(0x9e3779b97f4a7c15ull);
    test_api();

    /* n, h, w, cin, cout */
    test_direct(1, 5, 7, 3, 8);
    test_direct(3, 5, 7, 3, 8);
    test_direct(3, 8, 8, 3, 64);
    test_direct(1, 7, 5, 16, 5);
    test_direct(3, 6, 10, 64, 32);
    test_direct(3, 4, 4, 128, 17);
    test_direct(2, 1, 1, 4, 3);     /* only the centre tap */
    test_direct(3, 3, 1, 5, 7);     /* one column */
    test_direct(1, 2, 9, 1, 1);     /* one channel in and out */
    test_direct(3, 36, 36, 512, 4); /* 3888 rows: chunks split an image */

    test_maxpool(1, 2, 2, 1);
    test_maxpool(2, 6, 4, 3);
    test_maxpool(3, 8, 10, 64);
    test_maxpool(1, 14, 14, 512);
    return check_done();
}
