/*
 * test_onnx_graphs.c: ONNX files written here, with the protobuf-c code the
 * reader itself uses (onnx.pb-c.h), so that every case is a real file.
 *
 * - VGG16 as ONNX (the shared .h5's weights, NCHW kernels, Conv + Relu +
 *   MaxPool nodes) gives block5_pool bitwise equal to VGG16 built from the
 *   .h5 (transposed from Keras' y,x,c to ONNX's c,y,x), with the exact and
 *   the fast engine, on two reference photos.
 * - Convolutions of every geometry (stride 2, asymmetric pads, dilation 2,
 *   groups, depthwise, 1x1, 5x5) and a BatchNormalization folded into its
 *   Conv match this file's naive definition (double sums) to 1e-5.
 * - A weight in an external data file beside the model loads and computes
 *   what the one-file model does; "../" locations and missing files fail.
 * - Wrong graphs fail with one line naming the file and the node or tensor:
 *   a cycle, an unknown input, an unsupported operator, float64 and int8
 *   weights, a channel mismatch, a kernel larger than its input, absurd
 *   dimensions, a BatchNormalization after something other than a Conv.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "graph.h"
#include "onnx.h"
#include "onnx_write.h"
#include "support.h"
#include "weights.h"

#include <string.h>

static bn_graph *load_bytes(const uint8_t *buf, size_t len, const char *name, bn_error *err) {
    bn_graph *g = NULL;
    memset(err, 0, sizeof *err);
    if (bn_onnx_load_buffer(&g, buf, len, name, NULL, err))
        return NULL;
    return g;
}

/* ---- VGG16 as ONNX equals VGG16 from the .h5 ---------------------------- */

static void vgg16_onnx(void) {
    bn_vgg16_weights w;
    bn_error err = {0};
    if (bn_weights_load(&w, shared_path("models/vgg16_random_notop.h5"), &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    ow_model m;
    ow_model_init(&m, "input_1", 3, 224, 224);
    const char *prev = "input_1";
    static char names[13][3][40];
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        const bn_conv_weights *cw = &w.conv[i];
        float *k = ow_keep(malloc((size_t)9 * cw->cin * cw->cout * sizeof(float)));
        for (int co = 0; co < cw->cout; co++) /* (3,3,cin,cout) -> (cout,cin,3,3) */
            for (int ci = 0; ci < cw->cin; ci++)
                for (int t = 0; t < 9; t++)
                    k[((size_t)co * cw->cin + ci) * 9 + t] =
                        cw->kernel[((size_t)t * cw->cin + ci) * cw->cout + co];
        const char *nm = bn_vgg16_convs[i].name;
        snprintf(names[i][0], 40, "%s/preact", nm);
        snprintf(names[i][1], 40, "%s", nm);
        Onnx__NodeProto *n =
            ow_conv(&m, nm, prev, names[i][0], cw->cin, cw->cout, 3, 3, 1, k, cw->bias);
        int64_t pads[4] = {1, 1, 1, 1};
        ow_ints(n, "pads", 4, pads);
        const char *r = names[i][0];
        ow_node(&m, "Relu", names[i][1], 1, &r, names[i][1]);
        prev = names[i][1];
        int last = i == 12 || bn_vgg16_convs[i + 1].name[5] != nm[5];
        if (last) {
            snprintf(names[i][2], 40, "block%c_pool", nm[5]);
            Onnx__NodeProto *p = ow_node(&m, "MaxPool", names[i][2], 1, &prev, names[i][2]);
            int64_t k2[2] = {2, 2};
            ow_ints(p, "kernel_shape", 2, k2);
            ow_ints(p, "strides", 2, k2);
            prev = names[i][2];
        }
    }
    size_t len;
    uint8_t *buf = ow_bytes(&m, &len);
    float *in = support_ref_inputs(shared_path("reference"));
    CHECK(in != NULL);
    const char *keepname = "block5_pool";
    const bn_conv_engine engines[2] = {BN_CONV_DIRECT, BN_CONV_AUTO};
    for (int e = 0; e < 2 && in; e++) {
        bn_graph *go = load_bytes(buf, len, "vgg16.onnx", &err), *gh = NULL;
        CHECK_MSG(go != NULL, "%s", err.msg);
        CHECK_INT(bn_vgg16_build_graph(&gh, &w, BN_LAYER_BLOCK5_POOL, &err), BN_OK);
        if (!go || !gh) {
            bn_graph_free(go);
            bn_graph_free(gh);
            continue;
        }
        CHECK_INT(bn_graph_infer(go, 224, 224, &err), BN_OK);
        CHECK_INT(bn_graph_infer(gh, 224, 224, &err), BN_OK);
        CHECK_INT(bn_graph_prepare(go, engines[e], 2, &keepname, 1, &err), BN_OK);
        CHECK_INT(bn_graph_prepare(gh, engines[e], 2, &keepname, 1, &err), BN_OK);
        CHECK_INT(bn_graph_run(go, in, 2, &err), BN_OK);
        CHECK_INT(bn_graph_run(gh, in, 2, &err), BN_OK);
        int dim = 7 * 7 * 512;
        float *a = malloc(2 * (size_t)dim * sizeof(float)), *b = malloc(2 * (size_t)dim * 4);
        bn_graph_features(go, keepname, 0, 2, a, &err); /* (c, y, x) */
        bn_graph_features(gh, keepname, 0, 2, b, &err); /* (y, x, c) */
        int same = 1;
        for (int i = 0; i < 2; i++)
            for (int c = 0; c < 512; c++)
                for (int p = 0; p < 49; p++)
                    same &= a[(size_t)i * dim + c * 49 + p] == b[(size_t)i * dim + p * 512 + c];
        CHECK_MSG(same, "VGG16 through ONNX differs from VGG16 through the .h5 (%s)",
                  bn_conv_engine_name(engines[e]));
        free(a);
        free(b);
        bn_graph_free(go);
        bn_graph_free(gh);
    }
    free(in);
    bn_weights_free(&w);
}

/* ---- convolution geometries against the definition ----------------------- */

typedef struct {
    int cin, cout, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, group;
} geo;

/* out (oh, ow, cout) of in (h, w, cin), kernel (cout, cin/g, kh, kw) as ONNX. */
static void naive(const geo *q, const float *in, int h, int w, const float *k, const float *b,
                  double *out, int oh, int ow) {
    int cin_g = q->cin / q->group, cout_g = q->cout / q->group;
    for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++)
            for (int co = 0; co < q->cout; co++) {
                int gi = co / cout_g;
                double s = b[co];
                for (int ci = 0; ci < cin_g; ci++)
                    for (int ky = 0; ky < q->kh; ky++)
                        for (int kx = 0; kx < q->kw; kx++) {
                            int y = oy * q->sh - q->pt + ky * q->dh;
                            int x = ox * q->sw - q->pl + kx * q->dw;
                            if (y < 0 || y >= h || x < 0 || x >= w)
                                continue;
                            s += (double)in[((size_t)y * w + x) * q->cin + gi * cin_g + ci] *
                                 k[(((size_t)co * cin_g + ci) * q->kh + ky) * q->kw + kx];
                        }
                out[((size_t)oy * ow + ox) * q->cout + co] = s;
            }
}

static void geometries(void) {
    static const geo cases[] = {
        {3, 8, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1},    /* GoogLeNet conv1 */
        {16, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},  /* 1x1 */
        {8, 12, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},   /* inception 5x5 */
        {6, 10, 3, 3, 2, 1, 0, 1, 2, 0, 1, 1, 1},   /* asymmetric */
        {6, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},    /* dilated */
        {8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4},   /* grouped */
        {16, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16}, /* depthwise */
        {8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2},   /* grouped 1x1 */
        {3, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* the fast engine's case, no ReLU */
    };
    const int h = 19, w = 23;
    support_seed(7);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const geo *q = &cases[c];
        size_t nk = (size_t)q->cout * (q->cin / q->group) * q->kh * q->kw;
        float *k = ow_keep(malloc(nk * sizeof(float))),
              *b = ow_keep(malloc(q->cout * sizeof(float)));
        float *in = ow_keep(malloc((size_t)2 * h * w * q->cin * sizeof(float)));
        for (size_t i = 0; i < nk; i++)
            k[i] = support_rnd();
        for (int i = 0; i < q->cout; i++)
            b[i] = support_rnd();
        for (int i = 0; i < 2 * h * w * q->cin; i++)
            in[i] = support_rnd();
        for (int bn = 0; bn < 2; bn++) {
            ow_model m;
            ow_model_init(&m, "x", q->cin, h, w);
            const char *out = bn ? "conv" : "y";
            Onnx__NodeProto *n =
                ow_conv(&m, "c", "x", out, q->cin, q->cout, q->kh, q->kw, q->group, k, b);
            int64_t s[2] = {q->sh, q->sw}, p[4] = {q->pt, q->pl, q->pb, q->pr},
                    d[2] = {q->dh, q->dw};
            ow_ints(n, "strides", 2, s);
            ow_ints(n, "pads", 4, p);
            ow_ints(n, "dilations", 2, d);
            float *scale = NULL, *shift = NULL, *mean = NULL, *var = NULL;
            if (bn) { /* y = scale (conv - mean) / sqrt(var + 1e-5) + shift */
                scale = ow_keep(malloc(q->cout * 4)), shift = ow_keep(malloc(q->cout * 4));
                mean = ow_keep(malloc(q->cout * 4)), var = ow_keep(malloc(q->cout * 4));
                for (int i = 0; i < q->cout; i++) {
                    scale[i] = support_rnd() + 1.5f;
                    shift[i] = support_rnd();
                    mean[i] = support_rnd();
                    var[i] = support_rnd() + 1.2f;
                }
                int64_t cd[1] = {q->cout};
                ow_init(&m, "s", 1, cd, scale, q->cout * 4, 1);
                ow_init(&m, "t", 1, cd, shift, q->cout * 4, 1);
                ow_init(&m, "m", 1, cd, mean, q->cout * 4, 1);
                ow_init(&m, "v", 1, cd, var, q->cout * 4, 1);
                const char *ins[5] = {"conv", "s", "t", "m", "v"};
                ow_node(&m, "BatchNormalization", "bn", 5, ins, "y");
            }
            size_t len;
            uint8_t *buf = ow_bytes(&m, &len);
            bn_error err;
            for (int e = 0; e < 2; e++) {
                bn_graph *g = load_bytes(buf, len, "geo.onnx", &err);
                CHECK_MSG(g != NULL, "case %zu: %s", c, err.msg);
                if (!g)
                    continue;
                const char *y = "y";
                int rc = bn_graph_infer(g, h, w, &err);
                rc = rc ? rc
                        : bn_graph_prepare(g, e ? BN_CONV_AUTO : BN_CONV_DIRECT, 2, &y, 1, &err);
                rc = rc ? rc : bn_graph_run(g, in, 2, &err);
                CHECK_MSG(rc == BN_OK, "case %zu: %s", c, err.msg);
                bn_shape sh = bn_graph_tensor_shape(g, bn_graph_find(g, "y"));
                const float *o = bn_graph_output(g, "y");
                double *ref = malloc((size_t)sh.h * sh.w * q->cout * sizeof(double));
                double worst = 0;
                for (int img = 0; img < 2 && o; img++) {
                    naive(q, in + (size_t)img * h * w * q->cin, h, w, k, b, ref, sh.h, sh.w);
                    for (int i = 0; i < sh.h * sh.w * q->cout; i++) {
                        double r = ref[i];
                        if (bn) {
                            int co = i % q->cout;
                            r = scale[co] * (r - mean[co]) / sqrt(var[co] + 1e-5) + shift[co];
                        }
                        double diff =
                            fabs(o[(size_t)img * sh.h * sh.w * q->cout + i] - r) / (1 + fabs(r));
                        worst = diff > worst ? diff : worst;
                    }
                }
                CHECK_MSG(o && worst <= 1e-5, "case %zu%s: worst %.3g", c, bn ? " + BN" : "",
                          worst);
                free(ref);
                bn_graph_free(g);
            }
        }
    }
}

/* ---- wrong graphs -------------------------------------------------------- */

/* The model in m must fail to load or to infer at 16x16, with a message
 * holding `want`. */
static void expect_fail(ow_model *m, const char *want) {
    size_t len;
    uint8_t *buf = ow_bytes(m, &len);
    bn_error err;
    bn_graph *g = load_bytes(buf, len, "bad.onnx", &err);
    int rc = g ? bn_graph_infer(g, 16, 16, &err) : err.code;
    CHECK_MSG(rc != BN_OK, "loaded: expected an error with '%s'", want);
    CHECK_MSG(strstr(err.msg, want) && !strchr(err.msg, '\n'), "'%s' does not hold '%s'", err.msg,
              want);
    bn_graph_free(g);
}

static void bad_graphs(void) {
    float w[4 * 3 * 3 * 3] = {0}, b[8] = {0};
    ow_model m;
    /* a cycle: a reads b's output, b reads a's */
    ow_model_init(&m, "x", 3, 16, 16);
    const char *ia = "b_out", *ib = "a_out";
    ow_node(&m, "Relu", "a", 1, &ia, "a_out");
    ow_node(&m, "Relu", "b", 1, &ib, "b_out");
    expect_fail(&m, "node 'a' (Relu): input 'b_out' is neither the graph input nor");
    /* an unknown input */
    ow_model_init(&m, "x", 3, 16, 16);
    const char *iu = "nowhere";
    ow_node(&m, "Relu", "r", 1, &iu, "y");
    expect_fail(&m, "input 'nowhere'");
    /* an unsupported operator */
    ow_model_init(&m, "x", 3, 16, 16);
    const char *ix = "x";
    ow_node(&m, "Resize", "up1", 1, &ix, "y");
    expect_fail(&m, "bad.onnx: node 'up1' uses operator Resize, which bottleneck does not support");
    /* float64 and int8 weights */
    ow_model_init(&m, "x", 3, 16, 16);
    int64_t wd[4] = {4, 3, 3, 3};
    ow_init(&m, "W", 4, wd, w, sizeof w, 11);
    const char *ic[2] = {"x", "W"};
    ow_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' is float64");
    ow_model_init(&m, "x", 3, 16, 16);
    ow_init(&m, "W", 4, wd, w, 4 * 3 * 3 * 3, 3);
    ow_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' is int8");
    /* a channel mismatch: 3-channel input, kernel for 4 */
    ow_model_init(&m, "x", 3, 16, 16);
    ow_conv(&m, "c4", "x", "y", 4, 3, 3, 3, 1, w, b);
    expect_fail(&m, "node 'c4' (Conv): input 'x' has 3 channels, the kernel expects 4");
    /* a kernel larger than the input */
    ow_model_init(&m, "x", 3, 16, 16);
    Onnx__NodeProto *p = ow_node(&m, "MaxPool", "huge", 1, &ix, "y");
    int64_t k[2] = {40, 40};
    ow_ints(p, "kernel_shape", 2, k);
    expect_fail(&m, "node 'huge' (MaxPool): input (3, 16, 16) gives an empty output");
    /* absurd dimensions */
    ow_model_init(&m, "x", 3, 16, 16);
    int64_t big[4] = {1 << 30, 1 << 30, 3, 3};
    ow_init(&m, "W", 4, big, w, sizeof w, 1);
    ow_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' has absurd dimensions");
    /* BatchNormalization after a Relu */
    ow_model_init(&m, "x", 3, 16, 16);
    ow_node(&m, "Relu", "r", 1, &ix, "r_out");
    int64_t cd[1] = {3};
    ow_init(&m, "s", 1, cd, b, 12, 1);
    const char *ins[5] = {"r_out", "s", "s", "s", "s"};
    ow_node(&m, "BatchNormalization", "bn", 5, ins, "y");
    expect_fail(&m, "node 'bn' (BatchNormalization): only a BatchNormalization right after a Conv");
    /* the weight's byte count does not match its shape */
    ow_model_init(&m, "x", 3, 16, 16);
    ow_init(&m, "W", 4, wd, w, 10, 1);
    ow_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' holds 10 bytes for 108 values");
}

/* ---- external data ------------------------------------------------------ */

/* The conv weight of a small model moved to a file beside it (as ONNX writes
 * models over 2 GB): loads and computes what the one-file model computes;
 * a location outside the model's folder and a missing file are refused. */
static void external_data(void) {
    const char *dir = support_mkdtemp("bn-onnx-ext");
    if (!dir)
        return;
    float w[4 * 3 * 3 * 3], b[4] = {0.1f, -0.2f, 0.3f, 0};
    support_seed(3);
    for (int i = 0; i < 108; i++)
        w[i] = support_rnd();
    FILE *f = fopen(support_tmp_path("weights.bin"), "wb");
    CHECK(f && fwrite("padding!", 1, 8, f) == 8 && fwrite(w, 1, sizeof w, f) == sizeof w);
    if (f)
        fclose(f);
    const char *locations[3] = {"weights.bin", "../weights.bin", "missing.bin"};
    float in[3 * 8 * 8], ref[4 * 6 * 6];
    for (int i = 0; i < 3 * 8 * 8; i++)
        in[i] = support_rnd();
    for (int variant = 0; variant < 4; variant++) {
        ow_model m;
        ow_model_init(&m, "x", 3, 8, 8);
        ow_conv(&m, "c", "x", "y", 3, 4, 3, 3, 1, w, b);
        if (variant > 0) { /* the weight's bytes go to a file */
            Onnx__TensorProto *t = m.init[0];
            t->has_raw_data = 0;
            t->has_data_location = 1;
            t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
            Onnx__StringStringEntryProto **e = ow_keep(malloc(3 * sizeof *e));
            const char *keys[3] = {"location", "offset", "length"};
            const char *vals[3] = {locations[variant - 1], "8", "432"};
            for (int k = 0; k < 3; k++) {
                e[k] = ow_keep(malloc(sizeof *e[k]));
                onnx__string_string_entry_proto__init(e[k]);
                e[k]->key = (char *)keys[k];
                e[k]->value = (char *)vals[k];
            }
            t->n_external_data = 3;
            t->external_data = e;
        }
        size_t len;
        uint8_t *buf = ow_bytes(&m, &len);
        const char *path = support_tmp_path("model.onnx");
        f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, len, f) == len);
        if (f)
            fclose(f);
        bn_graph *g = NULL;
        bn_error err = {0};
        const char *y = "y";
        int rc = bn_onnx_load(&g, path, NULL, &err);
        if (variant >= 2) {
            CHECK_MSG(rc != BN_OK && strstr(err.msg, locations[variant - 1]), "%s", err.msg);
            continue;
        }
        rc = rc ? rc : bn_graph_infer(g, 8, 8, &err);
        rc = rc ? rc : bn_graph_prepare(g, BN_CONV_DIRECT, 1, &y, 1, &err);
        rc = rc ? rc : bn_graph_run(g, in, 1, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (!rc && variant == 0)
            memcpy(ref, bn_graph_output(g, "y"), sizeof ref);
        if (!rc && variant == 1)
            CHECK(memcmp(ref, bn_graph_output(g, "y"), sizeof ref) == 0);
        bn_graph_free(g);
    }
    support_remove_tree(dir);
}

/* ---- the id of vectors under --precision amx ----------------------------- */

/* A network of 1x1 convolutions only: under amx they run on tiles where AMX
 * does, and the id says so, never "direct" (which promises exact FP32);
 * with the exact engine asked for they are exact, and the id is "direct". */
static void amx_ids(void) {
    float w[8 * 16], b[8] = {0};
    support_seed(5);
    for (int i = 0; i < 8 * 16; i++)
        w[i] = support_rnd();
    ow_model m;
    ow_model_init(&m, "x", 16, 6, 6);
    ow_conv(&m, "c", "x", "y", 16, 8, 1, 1, 1, w, b);
    size_t len;
    uint8_t *buf = ow_bytes(&m, &len);
    const int amx = bn_conv_winograd_has_precision(BN_PRECISION_AMX);
    for (int direct = 0; direct < 2; direct++) {
        bn_error err;
        bn_graph *g = load_bytes(buf, len, "one_by_one.onnx", &err);
        CHECK_MSG(g != NULL, "%s", err.msg);
        if (!g)
            return;
        const char *y = "y";
        bn_graph_set_precision(g, BN_PRECISION_AMX);
        int rc = bn_graph_infer(g, 6, 6, &err);
        rc = rc ? rc : bn_graph_prepare(g, direct ? BN_CONV_DIRECT : BN_CONV_AUTO, 1, &y, 1, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (amx && !direct) {
            CHECK_STR(bn_graph_engine_id(g), "gemm-amx-bf16");
            CHECK_INT(bn_graph_precision(g), BN_PRECISION_AMX);
        } else {
            CHECK(strncmp(bn_graph_engine_id(g), "direct+openblas-", 16) == 0);
            CHECK_INT(bn_graph_precision(g), BN_PRECISION_FP32);
        }
        bn_graph_free(g);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    bn_cpu_set_threads(2);
    amx_ids();
    bad_graphs();
    external_data();
    geometries();
    vgg16_onnx();
    ow_free();
    return check_done();
}
