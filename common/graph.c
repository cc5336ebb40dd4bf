/*
 * graph.c: the network as data and its executor (graph.h).
 *
 * Owns: the node and tensor tables, shape inference, the fusions (Conv + Relu,
 * and Conv + Relu + 2x2 MaxPool where the Winograd engine does them in one
 * pass), pruning to what the kept tensors need, the activation buffers
 * planned by liveness, and every operator except the convolutions (conv.h).
 *
 * Buffers: after pruning, nodes run in order; a tensor lives from the node
 * that writes it to its last reader (kept tensors to the end). Walking the
 * nodes, each output takes a free slot (the smallest that fits, else the
 * largest free one grown to fit, else a new one) and each input whose last
 * reader this was frees its slot. Slots are sized for max_batch images and
 * allocated once. For VGG16 this finds the two ping-pong buffers that
 * vgg16.c used to allocate by hand; for GoogLeNet a handful.
 */
#include "graph.h"
#include "cpu.h"

#include <assert.h>
#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A tensor of more floats per image than this is refused at inference
 * (2^28 floats = 1 GiB per image): absurd dimensions fail cleanly. */
#define GRAPH_MAX_FLOATS ((size_t)1 << 28)

typedef struct {
    char *name;
    int canon;      /* the tensor this name stands for (itself unless an alias) */
    int producer;   /* node index, -1 for the input */
    bn_shape shape; /* per image, after inference */
    int last_use;   /* index of the last active node that reads it */
    int kept;
    int slot;
    float *data;
} gtensor;

typedef struct {
    bn_op op;
    char *name;
    int *in, nin;
    int out;
    bn_node_attrs a;
    int cin, cout;        /* conv; gemm: k, m */
    float *weight, *bias; /* conv (kh, kw, cin/group, cout); gemm (k, m) */
    int active;           /* needed by a kept tensor and not fused away */
    int pool2;            /* conv fused with the 2x2 max pool after it */
    bn_conv *fast;        /* 3x3 stride 1 pad 1 + ReLU: conv.h's engines */
    bn_conv_gemm *gen;    /* every other conv */
} gnode;

struct bn_graph {
    gtensor *t;
    int nt, capt;
    gnode *node;
    int nn, capn;
    int flatten_chw;
    int in_c, in_h, in_w;
    int inferred, prepared;
    bn_conv_engine engine;
    bn_precision precision; /* of the 3x3 convolutions (bn_graph_set_precision) */
    int max_batch;
    float **slot;
    int nslot;
    size_t *slot_floats;
    void *workspace;
    size_t ws_bytes;
    double *profile;    /* seconds per op type, or NULL */
    char engine_id[64]; /* bn_graph_engine_id, set by bn_graph_prepare */
};

void bn_graph_attrs_default(bn_node_attrs *a) {
    memset(a, 0, sizeof *a);
    a->kh = a->kw = a->sh = a->sw = a->dh = a->dw = a->group = 1;
    a->size = 1;
    a->alpha = 1e-4f;
    a->beta = 0.75f;
    a->bias = 1.0f;
    a->lo = -INFINITY;
    a->hi = INFINITY;
}

const char *bn_graph_op_name(bn_op op) {
    static const char *const names[] = {
        "Conv",          "Relu", "Clip",   "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "LRN",  "Concat", "Add",     "Flatten",     "Gemm",
        "Softmax"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "unknown";
}

/* ---- building ------------------------------------------------------------ */

static int graph_new_tensor(bn_graph *g, const char *name, int producer, bn_error *err) {
    if (bn_graph_find(g, name) >= 0)
        return -bn_fail(err, BN_EFORMAT, "tensor '%s' is written twice", name);
    if (g->nt == g->capt) {
        int cap = g->capt ? 2 * g->capt : 64;
        gtensor *t = realloc(g->t, (size_t)cap * sizeof *t);
        if (!t)
            return -bn_fail(err, BN_ENOMEM, "graph: out of memory");
        g->t = t;
        g->capt = cap;
    }
    gtensor *t = &g->t[g->nt];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name)
        return -bn_fail(err, BN_ENOMEM, "graph: out of memory");
    t->canon = g->nt;
    t->producer = producer;
    t->slot = -1;
    return g->nt++;
}

int bn_graph_new(bn_graph **out, const char *input, int channels, int flatten_chw, bn_error *err) {
    *out = NULL;
    if (channels <= 0 || channels > 65536)
        return bn_fail(err, BN_EINVAL, "graph: input '%s' has %d channels", input, channels);
    bn_graph *g = calloc(1, sizeof *g);
    if (!g)
        return bn_fail(err, BN_ENOMEM, "graph: out of memory");
    g->flatten_chw = flatten_chw;
    g->in_c = channels;
    if (graph_new_tensor(g, input, -1, err) < 0) {
        bn_graph_free(g);
        return err ? err->code : BN_ENOMEM;
    }
    *out = g;
    return BN_OK;
}

void bn_graph_free(bn_graph *g) {
    if (!g)
        return;
    for (int i = 0; i < g->nt; i++)
        free(g->t[i].name);
    for (int i = 0; i < g->nn; i++) {
        gnode *nd = &g->node[i];
        free(nd->name);
        free(nd->in);
        free(nd->weight);
        free(nd->bias);
        bn_conv_free(nd->fast);
        bn_conv_gemm_free(nd->gen);
    }
    for (int i = 0; i < g->nslot; i++)
        free(g->slot[i]);
    free(g->slot);
    free(g->slot_floats);
    free(g->workspace);
    free(g->t);
    free(g->node);
    free(g);
}

int bn_graph_find(const bn_graph *g, const char *name) {
    for (int i = 0; i < g->nt; i++)
        if (strcmp(g->t[i].name, name) == 0)
            return i;
    return -1;
}

/* Append a node reading `in` (resolved to canonical tensors) and writing a
 * new tensor `out`. Returns the node, or NULL with err set. */
static gnode *graph_node(bn_graph *g, bn_op op, const char *name, const char *const *in, int nin,
                         const char *out, const bn_node_attrs *a, bn_error *err) {
    if (g->inferred) {
        bn_fail(err, BN_EINVAL, "graph: node '%s' added after shape inference", name);
        return NULL;
    }
    if (nin < 1 || nin > 4096) {
        bn_fail(err, BN_EFORMAT, "node '%s' (%s): %d inputs", name, bn_graph_op_name(op), nin);
        return NULL;
    }
    int *ids = malloc((size_t)nin * sizeof *ids);
    if (!ids) {
        bn_fail(err, BN_ENOMEM, "graph: out of memory");
        return NULL;
    }
    for (int i = 0; i < nin; i++) {
        int t = in[i] ? bn_graph_find(g, in[i]) : -1;
        if (t < 0) {
            free(ids);
            bn_fail(err, BN_EFORMAT,
                    "node '%s' (%s): input '%s' is neither the graph input nor the output of an "
                    "earlier node (unknown tensor, or a cycle)",
                    name, bn_graph_op_name(op), in[i] ? in[i] : "(none)");
            return NULL;
        }
        ids[i] = g->t[t].canon;
    }
    if (g->nn == g->capn) {
        int cap = g->capn ? 2 * g->capn : 64;
        gnode *n = realloc(g->node, (size_t)cap * sizeof *n);
        if (!n) {
            free(ids);
            bn_fail(err, BN_ENOMEM, "graph: out of memory");
            return NULL;
        }
        g->node = n;
        g->capn = cap;
    }
    int t = graph_new_tensor(g, out, g->nn, err);
    if (t < 0) {
        free(ids);
        return NULL;
    }
    gnode *nd = &g->node[g->nn];
    memset(nd, 0, sizeof *nd);
    nd->name = strdup(name);
    if (!nd->name) {
        free(ids);
        g->nt--;
        free(g->t[t].name);
        bn_fail(err, BN_ENOMEM, "graph: out of memory");
        return NULL;
    }
    g->nn++;
    nd->op = op;
    nd->in = ids;
    nd->nin = nin;
    nd->out = t;
    if (a)
        nd->a = *a;
    else
        bn_graph_attrs_default(&nd->a);
    return nd;
}

int bn_graph_add_conv(bn_graph *g, const char *name, const char *in, const char *out, int cin,
                      int cout, const bn_node_attrs *a, const float *kernel, const float *bias,
                      bn_error *err) {
    if (cin <= 0 || cout <= 0 || cin > 65536 || cout > 65536 || a->group <= 0 || cin % a->group ||
        cout % a->group || a->kh <= 0 || a->kw <= 0 || a->kh > 1024 || a->kw > 1024 || a->sh <= 0 ||
        a->sw <= 0 || a->dh <= 0 || a->dw <= 0 || a->pt < 0 || a->pl < 0 || a->pb < 0 ||
        a->pr < 0 || !kernel)
        return bn_fail(err, BN_EFORMAT,
                       "node '%s' (Conv): invalid geometry (%d -> %d channels, kernel %dx%d, "
                       "stride %dx%d, group %d)",
                       name, cin, cout, a->kh, a->kw, a->sh, a->sw, a->group);
    gnode *nd = graph_node(g, BN_OP_CONV, name, &in, 1, out, a, err);
    if (!nd)
        return err ? err->code : BN_EFORMAT;
    nd->cin = cin;
    nd->cout = cout;
    size_t nk = (size_t)a->kh * a->kw * (cin / a->group) * cout;
    nd->weight = malloc(nk * sizeof(float));
    nd->bias = calloc((size_t)cout, sizeof(float));
    if (!nd->weight || !nd->bias)
        return bn_fail(err, BN_ENOMEM, "node '%s': out of memory for its kernel", name);
    memcpy(nd->weight, kernel, nk * sizeof(float));
    if (bias)
        memcpy(nd->bias, bias, (size_t)cout * sizeof(float));
    return BN_OK;
}

int bn_graph_add_gemm(bn_graph *g, const char *name, const char *in, const char *out, int k, int m,
                      const float *weight, const float *bias, bn_error *err) {
    if (k <= 0 || m <= 0 || (size_t)k * m > GRAPH_MAX_FLOATS || !weight)
        return bn_fail(err, BN_EFORMAT, "node '%s' (Gemm): invalid weight shape (%d, %d)", name, k,
                       m);
    gnode *nd = graph_node(g, BN_OP_GEMM, name, &in, 1, out, NULL, err);
    if (!nd)
        return err ? err->code : BN_EFORMAT;
    nd->cin = k;
    nd->cout = m;
    nd->weight = malloc((size_t)k * m * sizeof(float));
    nd->bias = calloc((size_t)m, sizeof(float));
    if (!nd->weight || !nd->bias)
        return bn_fail(err, BN_ENOMEM, "node '%s': out of memory for its weights", name);
    memcpy(nd->weight, weight, (size_t)k * m * sizeof(float));
    if (bias)
        memcpy(nd->bias, bias, (size_t)m * sizeof(float));
    return BN_OK;
}

int bn_graph_add(bn_graph *g, bn_op op, const char *name, const char *const *in, int nin,
                 const char *out, const bn_node_attrs *a, bn_error *err) {
    if (op == BN_OP_CONV || op == BN_OP_GEMM)
        return bn_fail(err, BN_EINVAL, "node '%s': %s needs weights", name, bn_graph_op_name(op));
    if ((op == BN_OP_ADD && nin != 2) || (op != BN_OP_ADD && op != BN_OP_CONCAT && nin != 1))
        return bn_fail(err, BN_EFORMAT, "node '%s' (%s): %d inputs", name, bn_graph_op_name(op),
                       nin);
    if (a && (op == BN_OP_MAXPOOL || op == BN_OP_AVGPOOL) &&
        (a->kh <= 0 || a->kw <= 0 || a->kh > 4096 || a->kw > 4096 || a->sh <= 0 || a->sw <= 0 ||
         a->pt < 0 || a->pl < 0 || a->pb < 0 || a->pr < 0 || a->pt >= a->kh || a->pb >= a->kh ||
         a->pl >= a->kw || a->pr >= a->kw))
        return bn_fail(err, BN_EFORMAT, "node '%s' (%s): invalid kernel %dx%d, stride %dx%d, pads",
                       name, bn_graph_op_name(op), a->kh, a->kw, a->sh, a->sw);
    if (a && op == BN_OP_LRN && (a->size <= 0 || a->size > 65536))
        return bn_fail(err, BN_EFORMAT, "node '%s' (LRN): size %d", name, a->size);
    gnode *nd = graph_node(g, op, name, in, nin, out, a, err);
    return nd ? BN_OK : (err ? err->code : BN_EFORMAT);
}

int bn_graph_alias(bn_graph *g, const char *name, const char *existing, bn_error *err) {
    int e = bn_graph_find(g, existing);
    if (e < 0)
        return bn_fail(err, BN_EFORMAT,
                       "tensor '%s': its source '%s' is neither the graph input nor the output "
                       "of an earlier node",
                       name, existing);
    int t = graph_new_tensor(g, name, g->t[e].producer, err);
    if (t < 0)
        return err ? err->code : BN_EFORMAT;
    g->t[t].canon = g->t[e].canon;
    return BN_OK;
}

/* ---- shapes -------------------------------------------------------------- */

/* Output side of a pool: ONNX's rule (floor, or ceil with the last window
 * starting inside the input or its leading pad). */
static int pool_out(int in, int k, int s, int p0, int p1, int ceil_mode) {
    long span = (long)in + p0 + p1 - k;
    if (span < 0)
        return 0;
    long out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= (long)in + p0)
        out--;
    return (int)out;
}

static int infer_node(bn_graph *g, gnode *nd, bn_error *err) {
    const bn_shape x = g->t[nd->in[0]].shape;
    const bn_node_attrs *a = &nd->a;
    bn_shape y = x;
    const char *op = bn_graph_op_name(nd->op);
    switch (nd->op) {
    case BN_OP_CONV: {
        if (x.c != nd->cin)
            return bn_fail(err, BN_EFORMAT,
                           "node '%s' (Conv): input '%s' has %d channels, the kernel expects %d",
                           nd->name, g->t[nd->in[0]].name, x.c, nd->cin);
        bn_conv_geom geo = {.cin = nd->cin,
                            .cout = nd->cout,
                            .kh = a->kh,
                            .kw = a->kw,
                            .sh = a->sh,
                            .sw = a->sw,
                            .pt = a->pt,
                            .pl = a->pl,
                            .pb = a->pb,
                            .pr = a->pr,
                            .dh = a->dh,
                            .dw = a->dw,
                            .group = a->group};
        bn_conv_gemm_out_size(&geo, x.h, x.w, &y.h, &y.w);
        y.c = nd->cout;
        break;
    }
    case BN_OP_MAXPOOL:
    case BN_OP_AVGPOOL:
        y.h = pool_out(x.h, a->kh, a->sh, a->pt, a->pb, a->ceil_mode);
        y.w = pool_out(x.w, a->kw, a->sw, a->pl, a->pr, a->ceil_mode);
        break;
    case BN_OP_GLOBAL_AVG:
    case BN_OP_GLOBAL_MAX: y.h = y.w = 1; break;
    case BN_OP_CONCAT:
        y.c = 0;
        for (int i = 0; i < nd->nin; i++) {
            bn_shape s = g->t[nd->in[i]].shape;
            if (s.h != x.h || s.w != x.w)
                return bn_fail(err, BN_EFORMAT,
                               "node '%s' (Concat): input '%s' is %dx%d, '%s' is %dx%d", nd->name,
                               g->t[nd->in[i]].name, s.h, s.w, g->t[nd->in[0]].name, x.h, x.w);
            y.c += s.c;
            if (y.c > 1 << 20)
                return bn_fail(err, BN_EFORMAT, "node '%s' (Concat): too many channels", nd->name);
        }
        break;
    case BN_OP_ADD: {
        bn_shape s = g->t[nd->in[1]].shape;
        if (s.c != x.c || s.h != x.h || s.w != x.w)
            return bn_fail(err, BN_EFORMAT,
                           "node '%s' (Add): shapes (%d, %d, %d) and (%d, %d, %d) differ", nd->name,
                           x.c, x.h, x.w, s.c, s.h, s.w);
        break;
    }
    case BN_OP_FLATTEN:
        y.c = x.c * x.h * x.w;
        y.h = y.w = 1;
        break;
    case BN_OP_GEMM:
        if (x.h != 1 || x.w != 1 || x.c != nd->cin)
            return bn_fail(err, BN_EFORMAT,
                           "node '%s' (Gemm): input '%s' is (%d, %d, %d), the weights expect a "
                           "vector of %d",
                           nd->name, g->t[nd->in[0]].name, x.c, x.h, x.w, nd->cin);
        y.c = nd->cout;
        break;
    case BN_OP_SOFTMAX:
        if (x.h != 1 || x.w != 1)
            return bn_fail(err, BN_EFORMAT,
                           "node '%s' (Softmax): only over the channels of a vector, input is "
                           "(%d, %d, %d)",
                           nd->name, x.c, x.h, x.w);
        break;
    case BN_OP_RELU:
    case BN_OP_CLIP:
    case BN_OP_LRN: break;
    }
    if (y.c <= 0 || y.h <= 0 || y.w <= 0)
        return bn_fail(err, BN_EFORMAT,
                       "node '%s' (%s): input (%d, %d, %d) gives an empty output (kernel larger "
                       "than the input?)",
                       nd->name, op, x.c, x.h, x.w);
    if ((size_t)y.c * y.h * y.w > GRAPH_MAX_FLOATS)
        return bn_fail(err, BN_EFORMAT, "node '%s' (%s): output (%d, %d, %d) is absurdly large",
                       nd->name, op, y.c, y.h, y.w);
    g->t[nd->out].shape = y;
    return BN_OK;
}

int bn_graph_infer(bn_graph *g, int h, int w, bn_error *err) {
    if (g->prepared)
        return bn_fail(err, BN_EINVAL, "graph: already prepared");
    if (h <= 0 || w <= 0 || h > 16384 || w > 16384)
        return bn_fail(err, BN_EINVAL, "graph: input size %dx%d out of range (1..16384)", h, w);
    g->in_h = h;
    g->in_w = w;
    g->t[0].shape = (bn_shape){g->in_c, h, w};
    for (int i = 0; i < g->nn; i++) {
        int rc = infer_node(g, &g->node[i], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < g->nt; i++)
        g->t[i].shape = g->t[g->t[i].canon].shape;
    g->inferred = 1;
    return BN_OK;
}

int bn_graph_tensor_count(const bn_graph *g) {
    return g->nt;
}
const char *bn_graph_tensor_name(const bn_graph *g, int i) {
    return g->t[i].name;
}
bn_shape bn_graph_tensor_shape(const bn_graph *g, int i) {
    return g->t[g->t[i].canon].shape;
}
const char *bn_graph_default_feature(const bn_graph *g) {
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].op == BN_OP_FLATTEN || g->node[i].op == BN_OP_GEMM)
            return g->t[g->node[i].in[0]].name;
    if (g->nn && g->node[g->nn - 1].op == BN_OP_SOFTMAX)
        return g->t[g->node[g->nn - 1].in[0]].name;
    return g->nn ? g->t[g->node[g->nn - 1].out].name : g->t[0].name;
}

const char *bn_graph_tensor_op(const bn_graph *g, int i) {
    int p = g->t[g->t[i].canon].producer;
    return p < 0 ? "input" : bn_graph_op_name(g->node[p].op);
}

const char *bn_graph_input_name(const bn_graph *g) {
    return g->t[0].name;
}

/* ---- preparing ----------------------------------------------------------- */

/* Active nodes reading canonical tensor t. */
static int graph_readers(const bn_graph *g, int t) {
    int n = 0;
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].active)
            for (int j = 0; j < g->node[i].nin; j++)
                n += g->node[i].in[j] == t;
    return n;
}

/* Whether conv.h's engines (Winograd, direct) take this conv: 3x3, stride 1,
 * pads 1, dilation 1, group 1, followed by ReLU. */
static int conv_fast_ok(const gnode *nd) {
    const bn_node_attrs *a = &nd->a;
    return a->kh == 3 && a->kw == 3 && a->sh == 1 && a->sw == 1 && a->pt == 1 && a->pl == 1 &&
           a->pb == 1 && a->pr == 1 && a->dh == 1 && a->dw == 1 && a->group == 1 && a->relu;
}

/* Conv -> Relu becomes one conv with ReLU; (3x3) Conv+ReLU -> 2x2/2 MaxPool
 * becomes one bn_conv_forward_pool. Only where the intermediate tensor has
 * no other reader and is not kept. */
static void graph_fuse(bn_graph *g) {
    for (int i = 0; i < g->nn; i++) {
        gnode *r = &g->node[i];
        if (!r->active || (r->op != BN_OP_RELU && r->op != BN_OP_MAXPOOL))
            continue;
        int t = r->in[0], p = g->t[t].producer;
        if (p < 0 || g->t[t].kept || graph_readers(g, t) != 1)
            continue;
        gnode *c = &g->node[p];
        if (!c->active || c->op != BN_OP_CONV || c->pool2)
            continue;
        if (r->op == BN_OP_RELU && !c->a.relu) {
            c->a.relu = 1;
        } else if (r->op == BN_OP_MAXPOOL && conv_fast_ok(c)) {
            const bn_node_attrs *a = &r->a;
            bn_shape s = g->t[t].shape;
            if (a->kh != 2 || a->kw != 2 || a->sh != 2 || a->sw != 2 || a->pt || a->pl || a->pb ||
                a->pr || s.h % 2 || s.w % 2)
                continue;
            c->pool2 = 1;
        } else {
            continue;
        }
        c->out = r->out;
        g->t[r->out].producer = p;
        r->active = 0;
    }
}

/* Plan and allocate the slots (see the file comment). */
static int graph_plan(bn_graph *g, bn_error *err) {
    for (int i = 0; i < g->nt; i++)
        g->t[i].last_use = -1;
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].active)
            for (int j = 0; j < g->node[i].nin; j++)
                g->t[g->node[i].in[j]].last_use = i;
    size_t *size = NULL;
    int *busy = NULL, ns = 0;
    size = calloc((size_t)g->nn + 1, sizeof *size);
    busy = calloc((size_t)g->nn + 1, sizeof *busy);
    if (!size || !busy) {
        free(size);
        free(busy);
        return bn_fail(err, BN_ENOMEM, "graph: out of memory");
    }
    for (int i = 0; i < g->nn; i++) {
        gnode *nd = &g->node[i];
        if (!nd->active)
            continue;
        gtensor *o = &g->t[nd->out];
        size_t need = (size_t)g->max_batch * o->shape.c * o->shape.h * o->shape.w;
        int best = -1;
        for (int s = 0; s < ns; s++)
            if (!busy[s] && size[s] >= need && (best < 0 || size[s] < size[best]))
                best = s;
        if (best < 0)
            for (int s = 0; s < ns; s++)
                if (!busy[s] && (best < 0 || size[s] > size[best]))
                    best = s;
        if (best < 0)
            best = ns++;
        if (size[best] < need)
            size[best] = need;
        busy[best] = 1;
        o->slot = best;
        for (int j = 0; j < nd->nin; j++) {
            gtensor *t = &g->t[nd->in[j]];
            if (t->producer >= 0 && t->last_use == i && !t->kept && t->slot >= 0)
                busy[t->slot] = 0;
        }
        if (!o->kept && o->last_use < 0)
            busy[best] = 0; /* written, never read: only by a pruned graph's leaf */
    }
    g->slot = calloc((size_t)ns + 1, sizeof *g->slot);
    g->slot_floats = size;
    free(busy);
    if (!g->slot)
        return bn_fail(err, BN_ENOMEM, "graph: out of memory");
    g->nslot = ns; /* (only with the array: bn_graph_free frees nslot of them) */
    for (int s = 0; s < ns; s++) {
        size_t bytes = (size[s] * sizeof(float) + 63) & ~(size_t)63;
        g->slot[s] = aligned_alloc(64, bytes ? bytes : 64);
        if (!g->slot[s])
            return bn_fail(err, BN_ENOMEM,
                           "graph: out of memory for activations of %d images (%zu MiB)",
                           g->max_batch, bytes >> 20);
    }
    for (int i = 0; i < g->nt; i++)
        if (g->t[i].canon == i && g->t[i].slot >= 0)
            g->t[i].data = g->slot[g->t[i].slot];
    return BN_OK;
}

static void graph_set_engine_id(bn_graph *g);

int bn_graph_prepare(bn_graph *g, bn_conv_engine engine, int max_batch, const char *const *keep,
                     int nkeep, bn_error *err) {
    if (!g->inferred || g->prepared)
        return bn_fail(err, BN_EINVAL, "graph: prepare needs inferred shapes, once");
    size_t per_image = (size_t)g->in_c * g->in_h * g->in_w;
    if (max_batch < 1 || max_batch > 65536 ||
        (size_t)max_batch * per_image * 64 > ((size_t)1 << 38))
        return bn_fail(err, BN_EINVAL, "graph: batch of %d at %dx%d is out of range", max_batch,
                       g->in_h, g->in_w);
    g->prepared = 1;
    g->engine = engine;
    g->max_batch = max_batch;
    for (int k = 0; k < nkeep; k++) {
        int t = bn_graph_find(g, keep[k]);
        if (t < 0)
            return bn_fail(err, BN_EINVAL, "graph: no tensor named '%s'", keep[k]);
        g->t[g->t[t].canon].kept = 1;
    }
    /* prune: a node is needed when a kept tensor depends on it */
    for (int i = g->nn - 1; i >= 0; i--) {
        gnode *nd = &g->node[i];
        nd->active = g->t[nd->out].kept;
        for (int j = i + 1; j < g->nn && !nd->active; j++)
            if (g->node[j].active)
                for (int k = 0; k < g->node[j].nin; k++)
                    nd->active |= g->node[j].in[k] == nd->out;
    }
    graph_fuse(g);

    /* engines and the shared workspace */
    for (int i = 0; i < g->nn; i++) {
        gnode *nd = &g->node[i];
        if (!nd->active || nd->op != BN_OP_CONV)
            continue;
        bn_shape x = g->t[nd->in[0]].shape;
        size_t ws;
        int rc;
        if (conv_fast_ok(nd)) {
            rc = bn_conv_create_precision(&nd->fast, engine, g->precision, nd->cin, nd->cout,
                                          nd->weight, nd->bias, err);
            if (rc)
                return rc;
            ws = nd->pool2 ? bn_conv_workspace_pool(nd->fast, max_batch, x.h, x.w)
                           : bn_conv_workspace(nd->fast, max_batch, x.h, x.w);
        } else {
            bn_conv_geom geo = {.cin = nd->cin,
                                .cout = nd->cout,
                                .kh = nd->a.kh,
                                .kw = nd->a.kw,
                                .sh = nd->a.sh,
                                .sw = nd->a.sw,
                                .pt = nd->a.pt,
                                .pl = nd->a.pl,
                                .pb = nd->a.pb,
                                .pr = nd->a.pr,
                                .dh = nd->a.dh,
                                .dw = nd->a.dw,
                                .group = nd->a.group,
                                .relu = nd->a.relu};
            /* the exact engine asked for (--conv direct): every convolution
             * exact, whatever the precision, as the 3x3 ones are */
            rc = bn_conv_gemm_create_precision(
                &nd->gen, &geo, nd->weight, nd->bias,
                engine == BN_CONV_DIRECT ? BN_PRECISION_FP32 : g->precision, err);
            if (rc)
                return rc;
            ws = bn_conv_gemm_workspace(nd->gen, x.h, x.w);
        }
        /* the engine holds its own copy now */
        free(nd->weight);
        nd->weight = NULL;
        g->ws_bytes = ws > g->ws_bytes ? ws : g->ws_bytes;
    }
    g->ws_bytes = (g->ws_bytes + 63) & ~(size_t)63;
    g->workspace = aligned_alloc(64, g->ws_bytes ? g->ws_bytes : 64);
    if (!g->workspace)
        return bn_fail(err, BN_ENOMEM, "graph: out of memory for a %zu MiB workspace",
                       g->ws_bytes >> 20);
    graph_set_engine_id(g);
    return graph_plan(g, err);
}

/* The fast node whose engine and precision name the vectors: the first
 * one not on the small engine (which AUTO gives the first layer beside
 * Winograd: "winograd" covers both, conv.h), else the first one. */
static const bn_conv *graph_main_conv(const bn_graph *g) {
    const bn_conv *first = NULL;
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].active && g->node[i].fast) {
            if (bn_conv_engine_of(g->node[i].fast) != BN_CONV_SMALL)
                return g->node[i].fast;
            first = first ? first : g->node[i].fast;
        }
    return first;
}

bn_conv_engine bn_graph_engine(const bn_graph *g) {
    const bn_conv *c = graph_main_conv(g);
    return c ? bn_conv_engine_of(c) : BN_CONV_DIRECT;
}

void bn_graph_set_precision(bn_graph *g, bn_precision precision) {
    g->precision = precision;
}

bn_precision bn_graph_precision(const bn_graph *g) {
    const bn_conv *c = graph_main_conv(g);
    if (c)
        return bn_conv_precision_of(c);
    /* no 3x3 convolution: AMX if the general ones run on tiles */
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].active && g->node[i].gen && bn_conv_gemm_uses_amx(g->node[i].gen))
            return BN_PRECISION_AMX;
    return BN_PRECISION_FP32;
}

/* Whether an active node computes through OpenBLAS: the direct engine's
 * 3x3 convolutions, the general ones (conv_gemm.c), Gemm. OpenBLAS picks its
 * kernels by CPU when it loads, and they sum in their own orders (Haswell's
 * and Sandybridge's give other bytes for VGG16 on the same CPU). */
static int graph_uses_blas(const bn_graph *g) {
    for (int i = 0; i < g->nn; i++) {
        const gnode *nd = &g->node[i];
        if (nd->active && ((nd->fast && bn_conv_engine_of(nd->fast) == BN_CONV_DIRECT) ||
                           (nd->gen && !bn_conv_gemm_uses_amx(nd->gen)) || nd->op == BN_OP_GEMM))
            return 1;
    }
    return 0;
}

/* The id of the vectors (conv.h), with "+openblas-CORE" appended (CORE as
 * OpenBLAS names its kernels, lower case) when OpenBLAS computes a part:
 * vectors of the same id are the same bytes on any host. */
static void graph_set_engine_id(bn_graph *g) {
    /* Winograd forced on a layer that AUTO would give the small engine: the
     * same engine name, other bytes, so another id (conv.h). */
    int forced = 0;
    for (int i = 0; i < g->nn; i++)
        if (g->node[i].active && g->node[i].fast &&
            bn_conv_engine_of(g->node[i].fast) == BN_CONV_WINOGRAD &&
            bn_conv_small_fits(g->node[i].cin))
            forced = 1;
    /* No 3x3 convolution to name the engine, and the others on AMX tiles:
     * not "direct", which promises exact FP32 */
    const char *id =
        !graph_main_conv(g) && bn_graph_precision(g) == BN_PRECISION_AMX
            ? "gemm-amx-bf16"
            : bn_conv_engine_id_network(bn_graph_engine(g), bn_graph_precision(g), forced);
    const char *core = graph_uses_blas(g) ? bn_cpu_blas_core() : NULL;
    if (!core) {
        snprintf(g->engine_id, sizeof g->engine_id, "%s", id);
        return;
    }
    int n = snprintf(g->engine_id, sizeof g->engine_id, "%s+openblas-", id);
    n = n < (int)sizeof g->engine_id ? n : (int)sizeof g->engine_id - 1;
    for (int i = 0; core[i] && n < (int)sizeof g->engine_id - 1; i++)
        g->engine_id[n++] = (char)tolower((unsigned char)core[i]);
    g->engine_id[n] = '\0';
}

const char *bn_graph_engine_id(const bn_graph *g) {
    return g->engine_id;
}

void bn_graph_profile(bn_graph *g, double *seconds) {
    g->profile = seconds;
}

static double graph_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

size_t bn_graph_memory(const bn_graph *g) {
    size_t b = g->ws_bytes;
    for (int s = 0; s < g->nslot; s++)
        b += g->slot_floats[s] * sizeof(float);
    return b;
}

/* ---- operators: NHWC, per image, shapes per image ------------------------- */

/* GCC at -O2 vectorises only loops whose trip count it knows; the channel
 * loops below run over any count, and vectorised they are 3-4x faster
 * (GoogLeNet's pools and LRN: 27% of its time before, bench_graph). */
#if defined(__GNUC__) && !defined(__clang__)
#define GRAPH_VECTORISE __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#else
#define GRAPH_VECTORISE
#endif

/* One pooling window's bounds: rows [*y0, *y1) and columns [*x0, *x1) of
 * the image, and the divisor of an average pool: the window clipped to the
 * padded input when count_include_pad (PyTorch's and ONNX Runtime's rule),
 * else the pixels inside the image. */
static int pool_window(const bn_node_attrs *a, bn_shape is, int oy, int ox, int *ya, int *yb,
                       int *xa, int *xb) {
    int y0 = oy * a->sh - a->pt, x0 = ox * a->sw - a->pl;
    int y1 = y0 + a->kh, x1 = x0 + a->kw;
    int py1 = y1 < is.h + a->pb ? y1 : is.h + a->pb;
    int px1 = x1 < is.w + a->pr ? x1 : is.w + a->pr;
    *ya = y0 < 0 ? 0 : y0;
    *xa = x0 < 0 ? 0 : x0;
    *yb = y1 < is.h ? y1 : is.h;
    *xb = x1 < is.w ? x1 : is.w;
    int cnt = a->count_include_pad ? (py1 - y0) * (px1 - x0) : (*yb - *ya) * (*xb - *xa);
    return cnt > 0 ? cnt : 1;
}

/* Max pool: x (h, w, c) -> y (oh, ow, c) for each of n images. */
GRAPH_VECTORISE
static void op_maxpool(const bn_node_attrs *a, const float *x, float *y, int n, bn_shape is,
                       bn_shape os) {
    const int c = is.c;
    for (int b = 0; b < n; b++) {
        const float *img = x + (size_t)b * is.h * is.w * c;
        for (int oy = 0; oy < os.h; oy++)
            for (int ox = 0; ox < os.w; ox++) {
                float *q = y + (((size_t)b * os.h + oy) * os.w + ox) * c;
                int ya, yb, xa, xb;
                pool_window(a, is, oy, ox, &ya, &yb, &xa, &xb);
                for (int k = 0; k < c; k++)
                    q[k] = -INFINITY;
                for (int yy = ya; yy < yb; yy++)
                    for (int xx = xa; xx < xb; xx++) {
                        const float *p = img + ((size_t)yy * is.w + xx) * c;
                        for (int k = 0; k < c; k++)
                            q[k] = p[k] > q[k] ? p[k] : q[k];
                    }
            }
    }
}

/* Average pool: x (h, w, c) -> y (oh, ow, c) for each of n images. */
GRAPH_VECTORISE
static void op_avgpool(const bn_node_attrs *a, const float *x, float *y, int n, bn_shape is,
                       bn_shape os) {
    const int c = is.c;
    for (int b = 0; b < n; b++) {
        const float *img = x + (size_t)b * is.h * is.w * c;
        for (int oy = 0; oy < os.h; oy++)
            for (int ox = 0; ox < os.w; ox++) {
                float *q = y + (((size_t)b * os.h + oy) * os.w + ox) * c;
                int ya, yb, xa, xb;
                float inv = 1.0f / (float)pool_window(a, is, oy, ox, &ya, &yb, &xa, &xb);
                for (int k = 0; k < c; k++)
                    q[k] = 0.0f;
                for (int yy = ya; yy < yb; yy++)
                    for (int xx = xa; xx < xb; xx++) {
                        const float *p = img + ((size_t)yy * is.w + xx) * c;
                        for (int k = 0; k < c; k++)
                            q[k] += p[k];
                    }
                for (int k = 0; k < c; k++)
                    q[k] *= inv;
            }
    }
}

/* Global average or max over (y, x): x (h, w, c) -> y (c). Sums in double,
 * pixels in order. */
static void op_global(int maxp, const float *x, float *y, int n, int hw, int c) {
    for (int b = 0; b < n; b++) {
        const float *img = x + (size_t)b * hw * c;
        float *o = y + (size_t)b * c;
        for (int k = 0; k < c; k++) {
            if (maxp) {
                float m = img[k];
                for (int p = 1; p < hw; p++)
                    m = img[(size_t)p * c + k] > m ? img[(size_t)p * c + k] : m;
                o[k] = m;
            } else {
                double s = 0;
                for (int p = 0; p < hw; p++)
                    s += img[(size_t)p * c + k];
                o[k] = (float)(s / (double)hw);
            }
        }
    }
}

/* LRN: the sum of squares over channel k's window, clipped to [0, c). */
static float lrn_edge(const float *v, int k, int lo, int hi, int c) {
    int k0 = k - lo < 0 ? 0 : k - lo, k1 = k + hi >= c ? c - 1 : k + hi;
    float s = 0.0f;
    for (int j = k0; j <= k1; j++)
        s += v[j] * v[j];
    return s;
}

/* LRN across channels (ONNX): y = x / (bias + alpha/size * sum x^2)^beta,
 * the sum over channels [k - floor((size-1)/2), k + ceil((size-1)/2)].
 * beta = 0.75 (every Caffe-era net) as t^0.75 = sqrt(t) * sqrt(sqrt(t)):
 * pow() per value was 20% of GoogLeNet's time. Each sum runs from 0 over
 * its window in channel order; for the channels whose window is whole, the
 * window's offsets are the outer loop so that the channels vectorise (the
 * same sums in the same order; a window per channel did not vectorise and
 * was most of the LRN's time: 6.0 ms of GoogLeNet's 30 per image on an AMD
 * EPYC, docs/PERFORMANCE.md). */
GRAPH_VECTORISE
static void op_lrn(const bn_node_attrs *a, const float *x, float *y, size_t pixels, int c) {
    const int lo = (a->size - 1) / 2, hi = a->size - 1 - lo;
    const float scale = a->alpha / (float)a->size;
    const int b075 = a->beta == 0.75f;
    /* channels [in0, in1) have all of their window inside [0, c) */
    const int in0 = lo < c ? lo : c, in1 = c - hi > in0 ? c - hi : in0;
    for (size_t p = 0; p < pixels; p++) {
        const float *v = x + p * c;
        float *o = y + p * c;
        for (int k = in0; k < in1; k++)
            o[k] = 0.0f;
        for (int j = -lo; j <= hi; j++)
            for (int k = in0; k < in1; k++)
                o[k] += v[k + j] * v[k + j];
        for (int k = 0; k < in0; k++)
            o[k] = lrn_edge(v, k, lo, hi, c);
        for (int k = in1; k < c; k++)
            o[k] = lrn_edge(v, k, lo, hi, c);
        if (b075)
            for (int k = 0; k < c; k++) {
                float t = a->bias + scale * o[k];
                o[k] = v[k] / (sqrtf(t) * sqrtf(sqrtf(t)));
            }
        else
            for (int k = 0; k < c; k++)
                o[k] = v[k] / powf(a->bias + scale * o[k], a->beta);
    }
}

static void op_softmax(const float *x, float *y, int n, int c) {
    for (int b = 0; b < n; b++) {
        const float *v = x + (size_t)b * c;
        float *o = y + (size_t)b * c;
        float m = v[0];
        for (int k = 1; k < c; k++)
            m = v[k] > m ? v[k] : m;
        double s = 0;
        for (int k = 0; k < c; k++)
            s += exp((double)v[k] - m);
        for (int k = 0; k < c; k++)
            o[k] = (float)(exp((double)v[k] - m) / s);
    }
}

/* (h, w, c) -> (c, h, w) flattened, per image. */
static void to_chw(const float *x, float *y, int h, int w, int c) {
    for (int k = 0; k < c; k++)
        for (int p = 0; p < h * w; p++)
            y[(size_t)k * h * w + p] = x[(size_t)p * c + k];
}

static void run_conv(bn_graph *g, const gnode *nd, const float *x, float *y, int n, bn_shape is) {
    if (nd->gen) {
        bn_conv_gemm_forward(nd->gen, x, y, n, is.h, is.w, g->workspace);
        return;
    }
    /* both engines keep each image's result independent of the batch */
    if (nd->pool2)
        bn_conv_forward_pool(nd->fast, x, y, n, is.h, is.w, g->workspace);
    else
        bn_conv_forward(nd->fast, x, y, n, is.h, is.w, g->workspace);
}

int bn_graph_run(bn_graph *g, const float *in, int n, bn_error *err) {
    if (!g->prepared)
        return bn_fail(err, BN_EINVAL, "graph: run before prepare");
    if (n < 0 || n > g->max_batch)
        return bn_fail(err, BN_EINVAL, "graph: batch of %d images, prepared for %d", n,
                       g->max_batch);
    if (n == 0)
        return BN_OK;
    g->t[0].data = (float *)in;
    for (int i = 0; i < g->nn; i++) {
        const gnode *nd = &g->node[i];
        if (!nd->active)
            continue;
        const gtensor *xt = &g->t[nd->in[0]];
        gtensor *yt = &g->t[nd->out];
        const float *x = xt->data;
        float *y = yt->data;
        bn_shape is = xt->shape, os = yt->shape;
        size_t isz = (size_t)n * is.c * is.h * is.w, osz = (size_t)n * os.c * os.h * os.w;
        double t0 = g->profile ? graph_now() : 0;
        switch (nd->op) {
        case BN_OP_CONV: run_conv(g, nd, x, y, n, is); break;
        case BN_OP_RELU:
            for (size_t j = 0; j < isz; j++)
                y[j] = x[j] > 0.0f ? x[j] : 0.0f;
            break;
        case BN_OP_CLIP:
            for (size_t j = 0; j < isz; j++) {
                float v = x[j] < nd->a.lo ? nd->a.lo : x[j];
                y[j] = v > nd->a.hi ? nd->a.hi : v;
            }
            break;
        case BN_OP_MAXPOOL: op_maxpool(&nd->a, x, y, n, is, os); break;
        case BN_OP_AVGPOOL: op_avgpool(&nd->a, x, y, n, is, os); break;
        case BN_OP_GLOBAL_AVG:
        case BN_OP_GLOBAL_MAX:
            op_global(nd->op == BN_OP_GLOBAL_MAX, x, y, n, is.h * is.w, is.c);
            break;
        case BN_OP_LRN: op_lrn(&nd->a, x, y, (size_t)n * is.h * is.w, is.c); break;
        case BN_OP_CONCAT: {
            size_t pixels = (size_t)n * os.h * os.w;
            int off = 0;
            for (int j = 0; j < nd->nin; j++) {
                const gtensor *t = &g->t[nd->in[j]];
                int c = t->shape.c;
                for (size_t p = 0; p < pixels; p++)
                    memcpy(y + p * os.c + off, t->data + p * c, (size_t)c * sizeof(float));
                off += c;
            }
            break;
        }
        case BN_OP_ADD: {
            const float *x2 = g->t[nd->in[1]].data;
            for (size_t j = 0; j < osz; j++)
                y[j] = x[j] + x2[j];
            break;
        }
        case BN_OP_FLATTEN:
            for (int b = 0; b < n; b++)
                to_chw(x + (size_t)b * os.c, y + (size_t)b * os.c, is.h, is.w, is.c);
            break;
        case BN_OP_GEMM:
            for (int b = 0; b < n; b++) {
                float *o = y + (size_t)b * nd->cout;
                memcpy(o, nd->bias, (size_t)nd->cout * sizeof(float));
                cblas_sgemv(CblasRowMajor, CblasTrans, nd->cin, nd->cout, 1.0f, nd->weight,
                            nd->cout, x + (size_t)b * nd->cin, 1, 1.0f, o, 1);
            }
            break;
        case BN_OP_SOFTMAX: op_softmax(x, y, n, is.c); break;
        }
        if (g->profile)
            g->profile[nd->op] += graph_now() - t0;
    }
    return BN_OK;
}

const float *bn_graph_output(const bn_graph *g, const char *name) {
    int t = bn_graph_find(g, name);
    if (t < 0)
        return NULL;
    t = g->t[t].canon;
    return g->t[t].kept || t == 0 ? g->t[t].data : NULL;
}

int bn_graph_feature_dim(const bn_graph *g, const char *name, int pooling) {
    int t = bn_graph_find(g, name);
    if (t < 0 || !g->inferred)
        return 0;
    bn_shape s = g->t[g->t[t].canon].shape;
    return pooling == 0 ? s.c * s.h * s.w : (pooling == 1 || pooling == 2) ? s.c : 0;
}

int bn_graph_features(const bn_graph *g, const char *name, int pooling, int n, float *out,
                      bn_error *err) {
    const float *x = bn_graph_output(g, name);
    if (!x)
        return bn_fail(err, BN_EINVAL, "graph: tensor '%s' was not kept", name);
    bn_shape s = g->t[g->t[bn_graph_find(g, name)].canon].shape;
    size_t hw = (size_t)s.h * s.w, img = hw * s.c;
    if (pooling == 0) {
        if (g->flatten_chw && hw > 1)
            for (int b = 0; b < n; b++)
                to_chw(x + b * img, out + b * img, s.h, s.w, s.c);
        else
            memcpy(out, x, (size_t)n * img * sizeof(float));
        return BN_OK;
    }
    if (pooling != 1 && pooling != 2)
        return bn_fail(err, BN_EINVAL, "graph: unknown pooling %d", pooling);
    op_global(pooling == 2, x, out, n, (int)hw, s.c);
    return BN_OK;
}
