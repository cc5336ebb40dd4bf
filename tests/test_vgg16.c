/*
 * test_vgg16.c: the VGG16 forward pass.
 *
 * - Against ../shared/reference (PyTorch, shared weights): the 6 reference
 *   inputs in one batch of 6 at 224 reproduce block3_pool and block5_pool to a
 *   relative L2 error of at most 1e-5 per image (printed).
 * - Against this file's own naive layer-by-layer network (seven-loop conv,
 *   four-way max) on random He-scaled weights at 32x32: block3/4/5_pool.
 * - A batch gives what one image at a time gives; avg and max pooling equal
 *   the mean and max over (y, x) of the flattened output; dims at 64, 96, 224.
 * - Bad arguments fail with BN_EINVAL and a message.
 */
#include "check.h"
#include "cpu.h"
#include "support.h"
#include "vgg16.h"

#include <strings.h>
#include <unistd.h>

static const struct {
    int cin, cout;
} arch[BN_VGG16_NCONV] = {{3, 64},    {64, 64},   {64, 128},  {128, 128}, {128, 256},
                          {256, 256}, {256, 256}, {256, 512}, {512, 512}, {512, 512},
                          {512, 512}, {512, 512}, {512, 512}};

/* Random weights with He-uniform scale, so activations neither vanish nor
 * explode through 13 layers; biases small and of both signs. */
static void random_weights(bn_vgg16_weights *w) {
    memset(w, 0, sizeof *w);
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        int cin = arch[i].cin, cout = arch[i].cout;
        size_t nk = (size_t)9 * cin * cout;
        float scale = sqrtf(6.0f / (9.0f * cin));
        w->conv[i].cin = cin;
        w->conv[i].cout = cout;
        w->conv[i].kernel = malloc(nk * sizeof(float));
        w->conv[i].bias = malloc(cout * sizeof(float));
        for (size_t j = 0; j < nk; j++)
            w->conv[i].kernel[j] = support_rnd() * scale;
        for (int j = 0; j < cout; j++)
            w->conv[i].bias[j] = 0.1f * support_rnd();
    }
}

static void free_random_weights(bn_vgg16_weights *w) {
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        free(w->conv[i].kernel);
        free(w->conv[i].bias);
    }
}

/* The definition (support_naive_conv, double sums) rounded to float:
 * in (n, s, s, cin) -> out (n, s, s, cout). */
static void naive_conv(const float *in, float *out, const bn_conv_weights *cw, int n, int s) {
    size_t nout = (size_t)n * s * s * cw->cout;
    double *d = malloc(nout * sizeof *d);
    support_naive_conv(in, cw->kernel, cw->bias, d, NULL, n, s, s, cw->cin, cw->cout);
    for (size_t i = 0; i < nout; i++)
        out[i] = (float)d[i];
    free(d);
}

/* in (n, s, s, c) -> out (n, s/2, s/2, c). */
static void naive_pool(const float *in, float *out, int n, int s, int c) {
    for (int b = 0; b < n; b++)
        for (int y = 0; y < s / 2; y++)
            for (int x = 0; x < s / 2; x++)
                for (int k = 0; k < c; k++) {
                    float m = -INFINITY;
                    for (int d = 0; d < 4; d++) {
                        float v = in[(((size_t)b * s + 2 * y + d / 2) * s + 2 * x + d % 2) * c + k];
                        m = v > m ? v : m;
                    }
                    out[(((size_t)b * (s / 2) + y) * (s / 2) + x) * c + k] = m;
                }
}

/* The whole network, layer by layer, naively; block3/4/5_pool outputs are
 * copied to p3, p4, p5 (flattened per image). */
static void naive_vgg16(const bn_vgg16_weights *w, const float *in, int n, int size, float *p3,
                        float *p4, float *p5) {
    size_t big = (size_t)n * size * size * 64;
    float *a = malloc(big * sizeof *a), *b = malloc(big * sizeof *b);
    memcpy(a, in, (size_t)n * size * size * 3 * sizeof *a);
    int s = size, i = 0;
    static const int convs_in_block[5] = {2, 2, 3, 3, 3};
    for (int blk = 0; blk < 5; blk++) {
        for (int j = 0; j < convs_in_block[blk]; j++, i++) {
            naive_conv(a, b, &w->conv[i], n, s);
            float *t = a;
            a = b;
            b = t;
        }
        int c = arch[i - 1].cout;
        naive_pool(a, b, n, s, c);
        float *t = a;
        a = b;
        b = t;
        s /= 2;
        size_t len = (size_t)n * s * s * c * sizeof(float);
        if (blk == 2)
            memcpy(p3, a, len);
        if (blk == 3)
            memcpy(p4, a, len);
        if (blk == 4)
            memcpy(p5, a, len);
    }
    free(a);
    free(b);
}

static void test_names_and_dims(void) {
    bn_layer l = BN_LAYER_BLOCK5_POOL;
    CHECK_INT(bn_vgg16_layer_parse("block3_pool", &l), BN_OK);
    CHECK_INT(l, BN_LAYER_BLOCK3_POOL);
    CHECK_INT(bn_vgg16_layer_parse("block4_pool", &l), BN_OK);
    CHECK_INT(l, BN_LAYER_BLOCK4_POOL);
    CHECK_INT(bn_vgg16_layer_parse("block5_pool", &l), BN_OK);
    CHECK_INT(l, BN_LAYER_BLOCK5_POOL);
    CHECK(bn_vgg16_layer_parse("block2_pool", &l) != BN_OK);
    CHECK(bn_vgg16_layer_parse("block5_conv3", &l) != BN_OK);
    CHECK(bn_vgg16_layer_parse(NULL, &l) != BN_OK);
    CHECK_STR(bn_vgg16_layer_name(BN_LAYER_BLOCK4_POOL), "block4_pool");
    bn_pooling p = BN_POOLING_NONE;
    CHECK_INT(bn_vgg16_pooling_parse("avg", &p), BN_OK);
    CHECK_INT(p, BN_POOLING_AVG);
    CHECK_INT(bn_vgg16_pooling_parse("max", &p), BN_OK);
    CHECK_INT(p, BN_POOLING_MAX);
    CHECK_INT(bn_vgg16_pooling_parse("none", &p), BN_OK);
    CHECK_INT(p, BN_POOLING_NONE);
    CHECK(bn_vgg16_pooling_parse("mean", &p) != BN_OK);
    CHECK_STR(bn_vgg16_pooling_name(BN_POOLING_MAX), "max");

    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, 224), 25088);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_AVG, 224), 512);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK3_POOL, BN_POOLING_NONE, 224), 28 * 28 * 256);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK3_POOL, BN_POOLING_MAX, 224), 256);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK4_POOL, BN_POOLING_NONE, 224), 14 * 14 * 512);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, 64), 2 * 2 * 512);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, 96), 3 * 3 * 512);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK3_POOL, BN_POOLING_NONE, 96), 12 * 12 * 256);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, 32), 512);
    CHECK_INT(bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, 100), 0);
}

static void test_errors(const bn_vgg16_weights *w) {
    bn_vgg16 *net = NULL;
    bn_error err;
    CHECK_INT(bn_vgg16_create(&net, w, BN_CONV_DIRECT, 100, 1, BN_LAYER_BLOCK5_POOL, &err),
              BN_EINVAL);
    CHECK(net == NULL);
    CHECK(strstr(err.msg, "100") != NULL);
    CHECK_INT(bn_vgg16_create(&net, w, BN_CONV_DIRECT, 32, 0, BN_LAYER_BLOCK5_POOL, &err),
              BN_EINVAL);

    /* A kernel of the wrong shape is named. */
    bn_vgg16_weights bad = *w;
    bad.conv[5].cin = 128;
    CHECK_INT(bn_vgg16_create(&net, &bad, BN_CONV_DIRECT, 32, 1, BN_LAYER_BLOCK5_POOL, &err),
              BN_EINVAL);
    CHECK(strstr(err.msg, "block3_conv2") != NULL);
    /* ... but layers past `last` are not looked at. */
    bad = *w;
    bad.conv[12].kernel = NULL;
    CHECK_INT(bn_vgg16_create(&net, &bad, BN_CONV_DIRECT, 32, 2, BN_LAYER_BLOCK4_POOL, &err),
              BN_OK);
    if (!net)
        return;
    float in[2 * 32 * 32 * 3] = {0}, out[2 * 512];
    CHECK_INT(bn_vgg16_forward(net, in, 3, BN_LAYER_BLOCK4_POOL, BN_POOLING_AVG, out, &err),
              BN_EINVAL);
    CHECK_INT(bn_vgg16_forward(net, in, 2, BN_LAYER_BLOCK5_POOL, BN_POOLING_AVG, out, &err),
              BN_EINVAL);
    CHECK(strstr(err.msg, "block4_pool") != NULL);
    CHECK_INT(bn_vgg16_forward(net, in, 2, BN_LAYER_BLOCK4_POOL, BN_POOLING_AVG, out, &err), BN_OK);
    bn_vgg16_free(net);
}

/* At 32x32 every layer against the naive network, for a batch of 2. */
static void test_naive_32(const bn_vgg16_weights *w) {
    const int n = 2, S = 32;
    size_t nin = (size_t)n * S * S * 3;
    float *in = malloc(nin * sizeof *in);
    for (size_t i = 0; i < nin; i++)
        in[i] = 100.0f * support_rnd(); /* the scale of caffe-preprocessed pixels */
    float *p3 = malloc(n * 4 * 4 * 256 * sizeof *p3), *p4 = malloc(n * 2 * 2 * 512 * sizeof *p4),
          *p5 = malloc(n * 512 * sizeof *p5);
    naive_vgg16(w, in, n, S, p3, p4, p5);

    bn_vgg16 *net;
    bn_error err;
    int rc = bn_vgg16_create(&net, w, BN_CONV_DIRECT, S, n, BN_LAYER_BLOCK5_POOL, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    const struct {
        bn_layer layer;
        const float *ref;
    } cases[] = {
        {BN_LAYER_BLOCK3_POOL, p3}, {BN_LAYER_BLOCK4_POOL, p4}, {BN_LAYER_BLOCK5_POOL, p5}};
    for (int c = 0; c < 3; c++) {
        int dim = bn_vgg16_dim(cases[c].layer, BN_POOLING_NONE, S);
        float *out = malloc((size_t)n * dim * sizeof *out);
        CHECK_INT(bn_vgg16_forward(net, in, n, cases[c].layer, BN_POOLING_NONE, out, &err), 0);
        double e = support_rel_l2(out, cases[c].ref, (size_t)n * dim);
        size_t nonzero = 0;
        for (size_t i = 0; i < (size_t)n * dim; i++)
            nonzero += cases[c].ref[i] != 0;
        printf("32x32 random weights, %s vs naive: relative L2 error %.2e (%zu of %zu nonzero)\n",
               bn_vgg16_layer_name(cases[c].layer), e, nonzero, (size_t)n * dim);
        CHECK_MSG(e <= 1e-5, "%s: %g", bn_vgg16_layer_name(cases[c].layer), e);
        CHECK(nonzero > (size_t)n * dim / 10); /* the signal survived the layers */
        free(out);
    }
    bn_vgg16_free(net);
    free(in);
    free(p3);
    free(p4);
    free(p5);
}

/* At 96x96 (any multiple of 32): a batch of 3 equals one image at a time;
 * avg and max equal the mean and max over (y, x) of the flattened output. */
static void test_batch_and_pooling(const bn_vgg16_weights *w, int S) {
    const int n = 3;
    size_t per = (size_t)S * S * 3;
    float *in = malloc(n * per * sizeof *in);
    for (size_t i = 0; i < n * per; i++)
        in[i] = 100.0f * support_rnd();
    bn_vgg16 *net;
    bn_error err;
    int rc = bn_vgg16_create(&net, w, BN_CONV_DIRECT, S, n, BN_LAYER_BLOCK5_POOL, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    for (bn_layer layer = BN_LAYER_BLOCK3_POOL; layer <= BN_LAYER_BLOCK5_POOL; layer++) {
        int dim = bn_vgg16_dim(layer, BN_POOLING_NONE, S), c = dim / ((S >> layer) * (S >> layer));
        CHECK_INT(c, layer == BN_LAYER_BLOCK3_POOL ? 256 : 512);
        CHECK_INT(bn_vgg16_dim(layer, BN_POOLING_AVG, S), c);
        float *flat = malloc((size_t)n * dim * sizeof *flat);
        float *one = malloc((size_t)dim * sizeof *one);
        float *avg = malloc((size_t)n * c * sizeof *avg),
              *max = malloc((size_t)n * c * sizeof *max);
        CHECK_INT(bn_vgg16_forward(net, in, n, layer, BN_POOLING_NONE, flat, &err), 0);
        CHECK_INT(bn_vgg16_forward(net, in, n, layer, BN_POOLING_AVG, avg, &err), 0);
        CHECK_INT(bn_vgg16_forward(net, in, n, layer, BN_POOLING_MAX, max, &err), 0);
        double worst = 0;
        for (int b = 0; b < n; b++) {
            CHECK_INT(bn_vgg16_forward(net, in + b * per, 1, layer, BN_POOLING_NONE, one, &err), 0);
            double e = support_rel_l2(one, flat + (size_t)b * dim, dim);
            worst = e > worst ? e : worst;
        }
        CHECK_MSG(worst <= 1e-6, "size %d %s: batch vs single %g", S, bn_vgg16_layer_name(layer),
                  worst);
        size_t bad_avg = 0, bad_max = 0;
        int hw = dim / c;
        for (int b = 0; b < n; b++)
            for (int k = 0; k < c; k++) {
                double sum = 0;
                float m = -INFINITY;
                for (int p = 0; p < hw; p++) {
                    float v = flat[(size_t)b * dim + (size_t)p * c + k];
                    sum += v;
                    m = v > m ? v : m;
                }
                float a = avg[b * c + k];
                bad_avg += !(fabs(a - sum / hw) <= 1e-6 * fabs(sum / hw) + 1e-30);
                bad_max += max[b * c + k] != m;
            }
        CHECK_MSG(bad_avg == 0, "size %d %s: %zu avg values differ", S, bn_vgg16_layer_name(layer),
                  bad_avg);
        CHECK_MSG(bad_max == 0, "size %d %s: %zu max values differ", S, bn_vgg16_layer_name(layer),
                  bad_max);
        printf("size %d %s: dim %d, batch of %d vs one at a time: relative L2 %.2e\n", S,
               bn_vgg16_layer_name(layer), dim, n, worst);
        free(flat);
        free(one);
        free(avg);
        free(max);
    }
    bn_vgg16_free(net);
    free(in);
}

/* The 6 reference images in one batch at 224 with the shared weights. */
static void test_reference(void) {
    bn_vgg16_weights w;
    bn_error err;
    const char *path = shared_path("models/vgg16_random_notop.h5");
    int rc = bn_weights_load(&w, path, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    if (rc)
        return;
    float *in = support_ref_inputs(shared_path("reference"));
    CHECK(in != NULL);
    if (!in)
        return;
    bn_vgg16 *net;
    rc = bn_vgg16_create(&net, &w, BN_CONV_DIRECT, SUPPORT_REF_SIZE, SUPPORT_NREF,
                         BN_LAYER_BLOCK5_POOL, &err);
    CHECK_MSG(rc == BN_OK, "%s", err.msg);
    bn_weights_free(&w); /* the network keeps its own copies */
    if (rc)
        return;
    CHECK_INT(support_ref_compare(net, in, shared_path("reference"),
                                  bn_conv_engine_name(BN_CONV_DIRECT), 1e-5),
              0);
    bn_vgg16_free(net);
    free(in);
}

int main(int argc, char **argv) {
    CHECK(support_use_fast_blas(argv) == 0);
    (void)argc;
    test_names_and_dims();
    bn_vgg16_weights w;
    random_weights(&w);
    test_errors(&w);
    test_naive_32(&w);
    test_batch_and_pooling(&w, 64);
    test_batch_and_pooling(&w, 96);
    free_random_weights(&w);
    test_reference();
    return check_done();
}
