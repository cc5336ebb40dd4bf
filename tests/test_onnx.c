/*
 * test_onnx.c: real pretrained CNNs read from ONNX files, run by the graph
 * executor, against an independent implementation.
 *
 * - ../shared/reference/bvlc_googlenet and squeezenet_v1.1 (PyTorch's Caffe
 *   nets, not the ONNX files): the 3 photos' inputs in one batch reproduce
 *   every listed tensor (GoogLeNet pool2/3x3_s2, inception_4e/output,
 *   pool5/7x7_s1, prob; SqueezeNet fire9/concat, pool10) to a relative L2 of
 *   at most 1e-5 per image with the exact engine and 1e-4 with the fast one;
 *   GoogLeNet's top-1 for cat.1000 is class 285 (Egyptian cat).
 * - Determinism: each photo's vector alone at 2 threads equals (memcmp) the
 *   same photo inside batches of 1, 2 and 3 at 1, 2 and 3 threads, with the
 *   exact and the fast engine.
 * - Truncated and byte-flipped copies of SqueezeNet fail with one line
 *   naming the file (or load); a missing file is BN_EIO.
 * - The file's metadata_props give the preprocessing (BGR, 104/117/123,
 *   0-255, 224 or 227); the listed tensors have the documented shapes.
 */
#include "check.h"
#include "cpu.h"
#include "graph.h"
#include "onnx.h"
#include "support.h"

#include <string.h>

#define NCASE 3
static const char *const cases[NCASE] = {"cat.1000", "cat.10005", "dog.10000"};

typedef struct {
    const char *model, *refdir;
    int size;
    int ntensor;
    const char *tensor[4];
    int c[4], hw[4];
} net_case;

static const net_case nets[] = {
    {"models/bvlc_googlenet.onnx",
     "reference/bvlc_googlenet",
     224,
     4,
     {"pool2/3x3_s2", "inception_4e/output", "pool5/7x7_s1", "prob"},
     {192, 832, 1024, 1000},
     {28, 14, 1, 1}},
    {"models/squeezenet_v1.1.onnx",
     "reference/squeezenet_v1.1",
     227,
     2,
     {"fire9/concat", "pool10"},
     {512, 1000},
     {14, 1}},
};

/* The NCHW reference inputs as one NHWC batch. */
static float *read_inputs(const char *refdir, int s) {
    size_t img = (size_t)3 * s * s;
    float *nhwc = malloc(NCASE * img * sizeof(float));
    for (int i = 0; i < NCASE; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s.input.f32", refdir, cases[i]);
        float *chw = support_read_f32(shared_path(rel), img);
        if (!chw) {
            free(nhwc);
            return NULL;
        }
        for (int c = 0; c < 3; c++)
            for (size_t p = 0; p < (size_t)s * s; p++)
                nhwc[i * img + p * 3 + c] = chw[c * (size_t)s * s + p];
        free(chw);
    }
    return nhwc;
}

static bn_graph *load(const net_case *nc, bn_conv_engine engine, int batch, bn_onnx_info *info) {
    bn_graph *g = NULL;
    bn_error err = {0};
    int rc = bn_onnx_load(&g, shared_path(nc->model), info, &err);
    if (!rc)
        rc = bn_graph_infer(g, nc->size, nc->size, &err);
    if (!rc)
        rc = bn_graph_prepare(g, engine, batch, nc->tensor, nc->ntensor, &err);
    CHECK_MSG(rc == BN_OK, "%s: %s", nc->model, err.msg);
    if (rc) {
        bn_graph_free(g);
        return NULL;
    }
    return g;
}

/* Every listed tensor of every photo within tol of the reference. */
static void compare(const net_case *nc, bn_conv_engine engine, double tol) {
    bn_onnx_info info;
    bn_graph *g = load(nc, engine, NCASE, &info);
    float *in = read_inputs(nc->refdir, nc->size);
    CHECK(in != NULL);
    if (!g || !in) {
        bn_graph_free(g);
        free(in);
        return;
    }
    bn_error err = {0};
    CHECK_INT(bn_graph_run(g, in, NCASE, &err), BN_OK);
    for (int t = 0; t < nc->ntensor; t++) {
        int dim = bn_graph_feature_dim(g, nc->tensor[t], 0);
        CHECK_INT(dim, nc->c[t] * nc->hw[t] * nc->hw[t]);
        float *out = malloc((size_t)NCASE * dim * sizeof(float));
        CHECK_INT(bn_graph_features(g, nc->tensor[t], 0, NCASE, out, &err), BN_OK);
        for (int i = 0; i < NCASE; i++) {
            char rel[512], fname[128];
            snprintf(fname, sizeof fname, "%s", nc->tensor[t]);
            for (char *p = fname; *p; p++)
                *p = *p == '/' ? '_' : *p;
            snprintf(rel, sizeof rel, "%s/%s.%s.f32", nc->refdir, cases[i], fname);
            float *ref = support_read_f32(shared_path(rel), (size_t)dim);
            CHECK_MSG(ref != NULL, "%s", rel);
            if (!ref)
                continue;
            double e = support_rel_l2(out + (size_t)i * dim, ref, (size_t)dim);
            printf("%-28s %-10s %-20s %s rel L2 %.2e\n", nc->model, cases[i], nc->tensor[t],
                   bn_conv_engine_name(engine), e);
            CHECK_MSG(e <= tol, "%s %s %s: %.3g > %.0e", nc->model, cases[i], nc->tensor[t], e,
                      tol);
            if (!strcmp(nc->tensor[t], "prob") && i == 0) {
                int best = 0;
                for (int k = 1; k < dim; k++)
                    best = out[k] > out[best] ? k : best;
                CHECK_INT(best, 285);
            }
            free(ref);
        }
        free(out);
    }
    free(in);
    bn_graph_free(g);
}

/* pool5 / pool10 of each photo alone, then inside batches of 2 and 3 and at
 * 1..3 threads: bitwise the same. */
static void determinism(const net_case *nc, bn_conv_engine engine) {
    const char *last = nc->tensor[nc->ntensor - (nc->ntensor == 4 ? 2 : 1)];
    float *in = read_inputs(nc->refdir, nc->size);
    if (!in)
        return;
    size_t img = (size_t)3 * nc->size * nc->size;
    bn_graph *g = load(nc, engine, NCASE, NULL);
    if (!g) {
        free(in);
        return;
    }
    int dim = bn_graph_feature_dim(g, last, 0);
    float *alone = malloc((size_t)NCASE * dim * sizeof(float));
    float *got = malloc((size_t)NCASE * dim * sizeof(float));
    bn_error err = {0};
    bn_cpu_set_threads(2);
    for (int i = 0; i < NCASE; i++) {
        bn_graph_run(g, in + i * img, 1, &err);
        bn_graph_features(g, last, 0, 1, alone + (size_t)i * dim, &err);
    }
    for (int threads = 1; threads <= 3; threads++) {
        bn_cpu_set_threads(threads);
        for (int n = 1; n <= NCASE; n++) {
            CHECK_INT(bn_graph_run(g, in, n, &err), BN_OK);
            bn_graph_features(g, last, 0, n, got, &err);
            for (int i = 0; i < n; i++)
                CHECK_MSG(!memcmp(got + (size_t)i * dim, alone + (size_t)i * dim,
                                  (size_t)dim * sizeof(float)),
                          "%s %s: %s in a batch of %d at %d threads differs from alone at 2 "
                          "threads (%s)",
                          nc->model, cases[i], last, n, threads, bn_conv_engine_name(engine));
        }
    }
    bn_cpu_set_threads(2);
    free(alone);
    free(got);
    free(in);
    bn_graph_free(g);
}

static void metadata(void) {
    bn_graph *g = NULL;
    bn_onnx_info info;
    bn_error err = {0};
    CHECK_INT(bn_onnx_load(&g, shared_path("models/squeezenet_v1.1.onnx"), &info, &err), BN_OK);
    CHECK(info.has_preprocess);
    CHECK_INT(info.image.preprocess, BN_PREPROCESS_CUSTOM);
    CHECK_INT(info.image.bgr, 1);
    CHECK_INT(info.image.range255, 1);
    CHECK_INT(info.image.size, 227);
    CHECK_NEAR(info.image.mean[0], 104, 0);
    CHECK_NEAR(info.image.mean[2], 123, 0);
    CHECK_NEAR(info.image.std[1], 1, 0);
    CHECK_STR(info.input, "data");
    CHECK_INT(info.opset, 13);
    CHECK_INT(strlen(info.sha256), 64);
    CHECK_INT(bn_graph_infer(g, 227, 227, &err), BN_OK);
    int t = bn_graph_find(g, "fire9/concat");
    CHECK(t > 0);
    bn_shape s = bn_graph_tensor_shape(g, t);
    CHECK_INT(s.c, 512);
    CHECK_INT(s.h, 14); /* ceil_mode pools: 113 -> 56 -> 28 -> 14 */
    CHECK(bn_graph_find(g, "conv1/preact") > 0);
    bn_graph_free(g);
}

/* Truncated and corrupted copies of a real model: an error naming the file,
 * one line, no graph, no crash (the fuzz harness explores further). */
static void bad_files(void) {
    FILE *f = fopen(shared_path("models/squeezenet_v1.1.onnx"), "rb");
    CHECK(f != NULL);
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *buf = malloc((size_t)len);
    CHECK_INT(fread(buf, 1, (size_t)len, f), len);
    fclose(f);
    static const double cuts[] = {0, 0.001, 0.3, 0.5, 0.999};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        bn_graph *g = (bn_graph *)1;
        bn_error err = {0};
        int rc = bn_onnx_load_buffer(&g, buf, (size_t)(len * cuts[i]), "cut.onnx", NULL, &err);
        CHECK_MSG(rc != BN_OK && g == NULL, "cut at %.3f loaded", cuts[i]);
        CHECK_MSG(strstr(err.msg, "cut.onnx") && !strchr(err.msg, '\n'), "%s", err.msg);
    }
    /* flip bytes in the first kilobyte (the graph's nodes): load or fail cleanly */
    support_seed(12);
    for (int trial = 0; trial < 50; trial++) {
        unsigned char *c = malloc((size_t)len);
        memcpy(c, buf, (size_t)len);
        for (int j = 0; j < 4; j++)
            c[(size_t)((support_rnd() + 1) * 512) % (size_t)len] ^= 0xff;
        bn_graph *g = NULL;
        bn_error err = {0};
        if (bn_onnx_load_buffer(&g, c, (size_t)len, "flip.onnx", NULL, &err) == BN_OK) {
            if (bn_graph_infer(g, 227, 227, &err) != BN_OK)
                CHECK_MSG(err.msg[0] != 0, "infer failed without a message");
            bn_graph_free(g);
        } else {
            CHECK_MSG(strstr(err.msg, "flip.onnx") != NULL, "%s", err.msg);
        }
        free(c);
    }
    free(buf);
    bn_graph *g = NULL;
    bn_error err = {0};
    CHECK(bn_onnx_load(&g, "/nonexistent/model.onnx", NULL, &err) == BN_EIO);
    CHECK(strstr(err.msg, "/nonexistent/model.onnx") != NULL);
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    bn_cpu_set_threads(2);
    metadata();
    bad_files();
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        compare(&nets[i], BN_CONV_DIRECT, 1e-5);
        compare(&nets[i], BN_CONV_AUTO, 1e-4);
        determinism(&nets[i], BN_CONV_DIRECT);
        determinism(&nets[i], BN_CONV_AUTO);
    }
    return check_done();
}
