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
 * - Wrong graphs fail with one line naming the file and the node or tensor:
 *   a cycle, an unknown input, an unsupported operator, float64 and int8
 *   weights, a channel mismatch, a kernel larger than its input, absurd
 *   dimensions, a BatchNormalization after something other than a Conv.
 */
#include "check.h"
#include "graph.h"
#include "onnx.h"
#include "onnx.pb-c.h"
#include "support.h"
#include "weights.h"

#include <string.h>

/* ---- writing models: every allocation is kept and freed at the end ------ */

static void *kept[100000];
static int nkept;

static void *keep(void *p) {
    if (nkept < (int)(sizeof kept / sizeof kept[0]))
        kept[nkept++] = p;
    return p;
}

static void free_kept(void) {
    while (nkept)
        free(kept[--nkept]);
}

typedef struct {
    Onnx__GraphProto g;
    Onnx__NodeProto *node[128];
    Onnx__TensorProto *init[128];
    Onnx__ValueInfoProto *in[1];
} model;

static void model_init(model *m, const char *input, int c, int h, int w) {
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    m->g = g;
    m->g.node = m->node;
    m->g.initializer = m->init;
    m->g.input = m->in;
    m->g.n_input = 1;
    m->g.name = "test";
    Onnx__ValueInfoProto *vi = keep(malloc(sizeof *vi));
    onnx__value_info_proto__init(vi);
    vi->name = (char *)input;
    Onnx__TypeProto *t = keep(malloc(sizeof *t));
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = keep(malloc(sizeof *tt));
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = 1;
    Onnx__TensorShapeProto *sh = keep(malloc(sizeof *sh));
    onnx__tensor_shape_proto__init(sh);
    Onnx__TensorShapeProto__Dimension **d = keep(malloc(4 * sizeof *d));
    int64_t dims[4] = {0, c, h, w};
    for (int i = 0; i < 4; i++) {
        d[i] = keep(malloc(sizeof *d[i]));
        onnx__tensor_shape_proto__dimension__init(d[i]);
        if (i) {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[i]->dim_value = dims[i];
        } else {
            d[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[i]->dim_param = "N";
        }
    }
    sh->n_dim = 4;
    sh->dim = d;
    tt->shape = sh;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    vi->type = t;
    m->in[0] = vi;
}

/* A float32 (or, with dtype, another type's bytes) initializer. */
static void add_init(model *m, const char *name, int ndims, const int64_t *dims, const void *data,
                     size_t bytes, int dtype) {
    Onnx__TensorProto *t = keep(malloc(sizeof *t));
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->n_dims = (size_t)ndims;
    t->dims = keep(malloc((size_t)ndims * sizeof(int64_t)));
    memcpy(t->dims, dims, (size_t)ndims * sizeof(int64_t));
    t->has_data_type = 1;
    t->data_type = dtype;
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = keep(malloc(bytes ? bytes : 1));
    memcpy(t->raw_data.data, data, bytes);
    m->init[m->g.n_initializer++] = t;
}

static Onnx__NodeProto *add_node(model *m, const char *op, const char *name, int nin,
                                 const char *const *in, const char *out) {
    Onnx__NodeProto *n = keep(malloc(sizeof *n));
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)name;
    n->n_input = (size_t)nin;
    n->input = keep(malloc((size_t)nin * sizeof(char *)));
    memcpy(n->input, in, (size_t)nin * sizeof(char *));
    n->n_output = 1;
    n->output = keep(malloc(sizeof(char *)));
    n->output[0] = (char *)out;
    n->attribute = keep(calloc(8, sizeof(Onnx__AttributeProto *)));
    m->node[m->g.n_node++] = n;
    return n;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, int count, const int64_t *v) {
    Onnx__AttributeProto *a = keep(malloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)count;
    a->ints = keep(malloc((size_t)count * sizeof(int64_t)));
    memcpy(a->ints, v, (size_t)count * sizeof(int64_t));
    n->attribute[n->n_attribute++] = a;
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = keep(malloc(sizeof *a));
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
    n->attribute[n->n_attribute++] = a;
}

/* Serialise; the bytes are kept. */
static uint8_t *model_bytes(model *m, size_t *len) {
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    op.domain = "";
    op.has_version = 1;
    op.version = 13;
    mp.has_ir_version = 1;
    mp.ir_version = 7;
    mp.n_opset_import = 1;
    mp.opset_import = ops;
    mp.graph = &m->g;
    *len = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = keep(malloc(*len));
    onnx__model_proto__pack(&mp, buf);
    return buf;
}

/* A Conv node with weight `name`_W (cout, cin/group, kh, kw) and bias. */
static Onnx__NodeProto *add_conv(model *m, const char *name, const char *in, const char *out,
                                 int cin, int cout, int kh, int kw, int group, const float *w,
                                 const float *b) {
    char *wn = keep(malloc(strlen(name) + 3)), *bn = keep(malloc(strlen(name) + 3));
    sprintf(wn, "%s_W", name);
    sprintf(bn, "%s_B", name);
    int64_t wd[4] = {cout, cin / group, kh, kw}, bd[1] = {cout};
    add_init(m, wn, 4, wd, w, (size_t)cout * (cin / group) * kh * kw * sizeof(float), 1);
    add_init(m, bn, 1, bd, b, (size_t)cout * sizeof(float), 1);
    const char *ins[3] = {in, wn, bn};
    Onnx__NodeProto *n = add_node(m, "Conv", name, 3, ins, out);
    int64_t k[2] = {kh, kw};
    attr_ints(n, "kernel_shape", 2, k);
    if (group > 1)
        attr_int(n, "group", group);
    return n;
}

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
    model m;
    model_init(&m, "input_1", 3, 224, 224);
    const char *prev = "input_1";
    static char names[13][3][40];
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        const bn_conv_weights *cw = &w.conv[i];
        float *k = keep(malloc((size_t)9 * cw->cin * cw->cout * sizeof(float)));
        for (int co = 0; co < cw->cout; co++) /* (3,3,cin,cout) -> (cout,cin,3,3) */
            for (int ci = 0; ci < cw->cin; ci++)
                for (int t = 0; t < 9; t++)
                    k[((size_t)co * cw->cin + ci) * 9 + t] =
                        cw->kernel[((size_t)t * cw->cin + ci) * cw->cout + co];
        const char *nm = bn_vgg16_convs[i].name;
        snprintf(names[i][0], 40, "%s/preact", nm);
        snprintf(names[i][1], 40, "%s", nm);
        Onnx__NodeProto *n =
            add_conv(&m, nm, prev, names[i][0], cw->cin, cw->cout, 3, 3, 1, k, cw->bias);
        int64_t pads[4] = {1, 1, 1, 1};
        attr_ints(n, "pads", 4, pads);
        const char *r = names[i][0];
        add_node(&m, "Relu", names[i][1], 1, &r, names[i][1]);
        prev = names[i][1];
        int last = i == 12 || bn_vgg16_convs[i + 1].name[5] != nm[5];
        if (last) {
            snprintf(names[i][2], 40, "block%c_pool", nm[5]);
            Onnx__NodeProto *p = add_node(&m, "MaxPool", names[i][2], 1, &prev, names[i][2]);
            int64_t k2[2] = {2, 2};
            attr_ints(p, "kernel_shape", 2, k2);
            attr_ints(p, "strides", 2, k2);
            prev = names[i][2];
        }
    }
    size_t len;
    uint8_t *buf = model_bytes(&m, &len);
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
        float *k = keep(malloc(nk * sizeof(float))), *b = keep(malloc(q->cout * sizeof(float)));
        float *in = keep(malloc((size_t)2 * h * w * q->cin * sizeof(float)));
        for (size_t i = 0; i < nk; i++)
            k[i] = support_rnd();
        for (int i = 0; i < q->cout; i++)
            b[i] = support_rnd();
        for (int i = 0; i < 2 * h * w * q->cin; i++)
            in[i] = support_rnd();
        for (int bn = 0; bn < 2; bn++) {
            model m;
            model_init(&m, "x", q->cin, h, w);
            const char *out = bn ? "conv" : "y";
            Onnx__NodeProto *n =
                add_conv(&m, "c", "x", out, q->cin, q->cout, q->kh, q->kw, q->group, k, b);
            int64_t s[2] = {q->sh, q->sw}, p[4] = {q->pt, q->pl, q->pb, q->pr},
                    d[2] = {q->dh, q->dw};
            attr_ints(n, "strides", 2, s);
            attr_ints(n, "pads", 4, p);
            attr_ints(n, "dilations", 2, d);
            float *scale = NULL, *shift = NULL, *mean = NULL, *var = NULL;
            if (bn) { /* y = scale (conv - mean) / sqrt(var + 1e-5) + shift */
                scale = keep(malloc(q->cout * 4)), shift = keep(malloc(q->cout * 4));
                mean = keep(malloc(q->cout * 4)), var = keep(malloc(q->cout * 4));
                for (int i = 0; i < q->cout; i++) {
                    scale[i] = support_rnd() + 1.5f;
                    shift[i] = support_rnd();
                    mean[i] = support_rnd();
                    var[i] = support_rnd() + 1.2f;
                }
                int64_t cd[1] = {q->cout};
                add_init(&m, "s", 1, cd, scale, q->cout * 4, 1);
                add_init(&m, "t", 1, cd, shift, q->cout * 4, 1);
                add_init(&m, "m", 1, cd, mean, q->cout * 4, 1);
                add_init(&m, "v", 1, cd, var, q->cout * 4, 1);
                const char *ins[5] = {"conv", "s", "t", "m", "v"};
                add_node(&m, "BatchNormalization", "bn", 5, ins, "y");
            }
            size_t len;
            uint8_t *buf = model_bytes(&m, &len);
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
static void expect_fail(model *m, const char *want) {
    size_t len;
    uint8_t *buf = model_bytes(m, &len);
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
    model m;
    /* a cycle: a reads b's output, b reads a's */
    model_init(&m, "x", 3, 16, 16);
    const char *ia = "b_out", *ib = "a_out";
    add_node(&m, "Relu", "a", 1, &ia, "a_out");
    add_node(&m, "Relu", "b", 1, &ib, "b_out");
    expect_fail(&m, "node 'a' (Relu): input 'b_out' is neither the graph input nor");
    /* an unknown input */
    model_init(&m, "x", 3, 16, 16);
    const char *iu = "nowhere";
    add_node(&m, "Relu", "r", 1, &iu, "y");
    expect_fail(&m, "input 'nowhere'");
    /* an unsupported operator */
    model_init(&m, "x", 3, 16, 16);
    const char *ix = "x";
    add_node(&m, "Resize", "up1", 1, &ix, "y");
    expect_fail(&m, "bad.onnx: node 'up1' uses operator Resize, which bottleneck does not support");
    /* float64 and int8 weights */
    model_init(&m, "x", 3, 16, 16);
    int64_t wd[4] = {4, 3, 3, 3};
    add_init(&m, "W", 4, wd, w, sizeof w, 11);
    const char *ic[2] = {"x", "W"};
    add_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' is float64");
    model_init(&m, "x", 3, 16, 16);
    add_init(&m, "W", 4, wd, w, 4 * 3 * 3 * 3, 3);
    add_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' is int8");
    /* a channel mismatch: 3-channel input, kernel for 4 */
    model_init(&m, "x", 3, 16, 16);
    add_conv(&m, "c4", "x", "y", 4, 3, 3, 3, 1, w, b);
    expect_fail(&m, "node 'c4' (Conv): input 'x' has 3 channels, the kernel expects 4");
    /* a kernel larger than the input */
    model_init(&m, "x", 3, 16, 16);
    Onnx__NodeProto *p = add_node(&m, "MaxPool", "huge", 1, &ix, "y");
    int64_t k[2] = {40, 40};
    attr_ints(p, "kernel_shape", 2, k);
    expect_fail(&m, "node 'huge' (MaxPool): input (3, 16, 16) gives an empty output");
    /* absurd dimensions */
    model_init(&m, "x", 3, 16, 16);
    int64_t big[4] = {1 << 30, 1 << 30, 3, 3};
    add_init(&m, "W", 4, big, w, sizeof w, 1);
    add_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' has absurd dimensions");
    /* BatchNormalization after a Relu */
    model_init(&m, "x", 3, 16, 16);
    add_node(&m, "Relu", "r", 1, &ix, "r_out");
    int64_t cd[1] = {3};
    add_init(&m, "s", 1, cd, b, 12, 1);
    const char *ins[5] = {"r_out", "s", "s", "s", "s"};
    add_node(&m, "BatchNormalization", "bn", 5, ins, "y");
    expect_fail(&m, "node 'bn' (BatchNormalization): only a BatchNormalization right after a Conv");
    /* the weight's byte count does not match its shape */
    model_init(&m, "x", 3, 16, 16);
    add_init(&m, "W", 4, wd, w, 10, 1);
    add_node(&m, "Conv", "c", 2, ic, "y");
    expect_fail(&m, "tensor 'W' holds 10 bytes for 108 values");
}

int main(void) {
    bn_set_threads(2);
    bad_graphs();
    geometries();
    vgg16_onnx();
    free_kept();
    return check_done();
}
