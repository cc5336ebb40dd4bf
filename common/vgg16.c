/*
 * vgg16.c: the VGG16 convolutional base (vgg16.h), built as a graph.
 *
 * Owns: the network's architecture as one sequence of builder calls
 * (vgg16_build, below: 13 convs and 5 pools, each with its output shape),
 * the layer and pooling names. The layer table itself (names, channels) is
 * weights.c's bn_vgg16_convs, the one the loader checks the file against.
 *
 * Nothing runs here: graph.c runs the graph, as it runs every network read
 * from ONNX. It fuses each block's last conv with its pool
 * (bn_conv_forward_pool, one pass in the Winograd engine), plans the
 * activations by liveness (two buffers of the block1 size, as before) and
 * allocates everything in bn_vgg16_create, so bn_vgg16_forward allocates
 * nothing. At S = 224 and batch 8 that is 2 x 98 MiB of activations plus the
 * conv workspace.
 */
#include "vgg16.h"
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bn_vgg16 {
    bn_graph *graph;
    int size, max_batch;
    bn_layer last;
};

/* Conv layers that come before the pool of `last`. */
static int vgg_nconv(bn_layer last) {
    switch (last) {
    case BN_LAYER_BLOCK3_POOL: return 7;
    case BN_LAYER_BLOCK4_POOL: return 10;
    case BN_LAYER_BLOCK5_POOL: return 13;
    }
    return 0;
}

/* Conv i: 3x3 "same" + bias + ReLU, named as Keras names the layer. */
static int vgg_conv(bn_graph *g, const bn_vgg16_weights *w, int i, const char *in, bn_error *err) {
    bn_node_attrs a;
    bn_graph_attrs_default(&a);
    a.kh = a.kw = 3;
    a.pt = a.pl = a.pb = a.pr = 1;
    a.relu = 1;
    const char *name = bn_vgg16_convs[i].name;
    return bn_graph_add_conv(g, name, in, name, bn_vgg16_convs[i].cin, bn_vgg16_convs[i].cout, &a,
                             w->conv[i].kernel, w->conv[i].bias, err);
}

/* blockN_pool: 2x2 max pool, stride 2. */
static int vgg_pool(bn_graph *g, int block, const char *in, bn_error *err) {
    char name[32];
    snprintf(name, sizeof name, "block%d_pool", block);
    bn_node_attrs a;
    bn_graph_attrs_default(&a);
    a.kh = a.kw = a.sh = a.sw = 2;
    return bn_graph_add(g, BN_OP_MAXPOOL, name, &in, 1, name, &a, err);
}

/* The network up to the pool of block `blocks` (3, 4 or 5); input (S, S, 3). */
static int vgg16_build(bn_graph *g, const bn_vgg16_weights *w, int blocks, bn_error *err) {
    int rc = 0;
    rc = rc ? rc : vgg_conv(g, w, 0, "input_1", err);      /* (S, S, 64) */
    rc = rc ? rc : vgg_conv(g, w, 1, "block1_conv1", err); /* (S, S, 64) */
    rc = rc ? rc : vgg_pool(g, 1, "block1_conv2", err);    /* (S/2, S/2, 64) */
    rc = rc ? rc : vgg_conv(g, w, 2, "block1_pool", err);  /* (S/2, S/2, 128) */
    rc = rc ? rc : vgg_conv(g, w, 3, "block2_conv1", err); /* (S/2, S/2, 128) */
    rc = rc ? rc : vgg_pool(g, 2, "block2_conv2", err);    /* (S/4, S/4, 128) */
    rc = rc ? rc : vgg_conv(g, w, 4, "block2_pool", err);  /* (S/4, S/4, 256) */
    rc = rc ? rc : vgg_conv(g, w, 5, "block3_conv1", err); /* (S/4, S/4, 256) */
    rc = rc ? rc : vgg_conv(g, w, 6, "block3_conv2", err); /* (S/4, S/4, 256) */
    rc = rc ? rc : vgg_pool(g, 3, "block3_conv3", err);    /* (S/8, S/8, 256) */
    if (blocks == 3)
        return rc;
    rc = rc ? rc : vgg_conv(g, w, 7, "block3_pool", err);  /* (S/8, S/8, 512) */
    rc = rc ? rc : vgg_conv(g, w, 8, "block4_conv1", err); /* (S/8, S/8, 512) */
    rc = rc ? rc : vgg_conv(g, w, 9, "block4_conv2", err); /* (S/8, S/8, 512) */
    rc = rc ? rc : vgg_pool(g, 4, "block4_conv3", err);    /* (S/16, S/16, 512) */
    if (blocks == 4)
        return rc;
    rc = rc ? rc : vgg_conv(g, w, 10, "block4_pool", err);  /* (S/16, S/16, 512) */
    rc = rc ? rc : vgg_conv(g, w, 11, "block5_conv1", err); /* (S/16, S/16, 512) */
    rc = rc ? rc : vgg_conv(g, w, 12, "block5_conv2", err); /* (S/16, S/16, 512) */
    rc = rc ? rc : vgg_pool(g, 5, "block5_conv3", err);     /* (S/32, S/32, 512) */
    return rc;
}

int bn_vgg16_build_graph(bn_graph **out, const bn_vgg16_weights *w, bn_layer last, bn_error *err) {
    *out = NULL;
    int nconv = vgg_nconv(last);
    if (nconv == 0)
        return bn_fail(err, BN_EINVAL, "vgg16: unknown last layer %d", (int)last);
    for (int i = 0; i < nconv; i++) {
        const bn_conv_weights *cw = &w->conv[i];
        if (cw->cin != bn_vgg16_convs[i].cin || cw->cout != bn_vgg16_convs[i].cout)
            return bn_fail(err, BN_EINVAL, "vgg16: %s has %d -> %d channels, expected %d -> %d",
                           bn_vgg16_convs[i].name, cw->cin, cw->cout, bn_vgg16_convs[i].cin,
                           bn_vgg16_convs[i].cout);
        if (!cw->kernel || !cw->bias)
            return bn_fail(err, BN_EINVAL, "vgg16: %s has no weights loaded",
                           bn_vgg16_convs[i].name);
    }
    bn_graph *g;
    int rc = bn_graph_new(&g, "input_1", 3, 0, err);
    if (rc)
        return rc;
    if ((rc = vgg16_build(g, w, (int)last, err))) {
        bn_graph_free(g);
        return rc;
    }
    *out = g;
    return BN_OK;
}

int bn_vgg16_create(bn_vgg16 **out, const bn_vgg16_weights *w, bn_conv_engine engine, int size,
                    int max_batch, bn_layer last, bn_error *err) {
    return bn_vgg16_create_precision(out, w, engine, BN_PRECISION_FP32, size, max_batch, last, err);
}

int bn_vgg16_create_precision(bn_vgg16 **out, const bn_vgg16_weights *w, bn_conv_engine engine,
                              bn_precision precision, int size, int max_batch, bn_layer last,
                              bn_error *err) {
    *out = NULL;
    if (vgg_nconv(last) == 0)
        return bn_fail(err, BN_EINVAL, "vgg16: unknown last layer %d", (int)last);
    if (size < 32 || size % 32 != 0 || size > 8192)
        return bn_fail(err, BN_EINVAL, "vgg16: input size %d is not a multiple of 32 (32..8192)",
                       size);
    if (max_batch < 1 || (size_t)max_batch * size * size * 64 > ((size_t)1 << 40) / 4)
        return bn_fail(err, BN_EINVAL, "vgg16: batch of %d at size %d is out of range", max_batch,
                       size);
    bn_vgg16 *net = calloc(1, sizeof *net);
    if (!net)
        return bn_fail(err, BN_ENOMEM, "vgg16: out of memory");
    net->size = size;
    net->max_batch = max_batch;
    net->last = last;
    /* every pool up to `last` stays readable */
    static const char *const pools[] = {"block3_pool", "block4_pool", "block5_pool"};
    int rc = bn_vgg16_build_graph(&net->graph, w, last, err);
    if (!rc)
        rc = bn_graph_infer(net->graph, size, size, err);
    if (!rc) {
        bn_graph_set_precision(net->graph, precision);
        rc = bn_graph_prepare(net->graph, engine, max_batch, pools, (int)last - 2, err);
    }
    if (rc) {
        bn_vgg16_free(net);
        return rc;
    }
    *out = net;
    return BN_OK;
}

void bn_vgg16_free(bn_vgg16 *net) {
    if (!net)
        return;
    bn_graph_free(net->graph);
    free(net);
}

bn_conv_engine bn_vgg16_engine(const bn_vgg16 *net) {
    return bn_graph_engine(net->graph);
}

const char *bn_vgg16_engine_id(const bn_vgg16 *net) {
    return bn_graph_engine_id(net->graph);
}

/* Channels out of block3_pool (256), block4_pool and block5_pool (512). */
static int vgg_channels(bn_layer layer) {
    return layer == BN_LAYER_BLOCK3_POOL ? 256 : 512;
}

/* 0 for arguments that name no valid output. */
int bn_vgg16_dim(bn_layer layer, bn_pooling pooling, int size) {
    if (vgg_nconv(layer) == 0 || size < 32 || size % 32 != 0)
        return 0;
    int c = vgg_channels(layer), s = size >> (int)layer;
    switch (pooling) {
    case BN_POOLING_NONE: return s * s * c;
    case BN_POOLING_AVG:
    case BN_POOLING_MAX: return c;
    }
    return 0;
}

int bn_vgg16_forward(bn_vgg16 *net, const float *in, int n, bn_layer layer, bn_pooling pooling,
                     float *out, bn_error *err) {
    if (n < 0 || n > net->max_batch)
        return bn_fail(err, BN_EINVAL, "vgg16: batch of %d images, the network was built for %d", n,
                       net->max_batch);
    if (vgg_nconv(layer) == 0 || vgg_nconv(layer) > vgg_nconv(net->last))
        return bn_fail(err, BN_EINVAL, "vgg16: layer %d not built (network ends at %s)", (int)layer,
                       bn_vgg16_layer_name(net->last));
    if (pooling != BN_POOLING_NONE && pooling != BN_POOLING_AVG && pooling != BN_POOLING_MAX)
        return bn_fail(err, BN_EINVAL, "vgg16: unknown pooling %d", (int)pooling);
    if (n == 0)
        return BN_OK;
    int rc = bn_graph_run(net->graph, in, n, err);
    if (!rc)
        rc = bn_graph_features(net->graph, bn_vgg16_layer_name(layer), (int)pooling, n, out, err);
    return rc;
}

int bn_vgg16_layer_parse(const char *s, bn_layer *out) {
    static const bn_layer all[] = {BN_LAYER_BLOCK3_POOL, BN_LAYER_BLOCK4_POOL,
                                   BN_LAYER_BLOCK5_POOL};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, bn_vgg16_layer_name(all[i])) == 0) {
            *out = all[i];
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_vgg16_layer_name(bn_layer l) {
    switch (l) {
    case BN_LAYER_BLOCK3_POOL: return "block3_pool";
    case BN_LAYER_BLOCK4_POOL: return "block4_pool";
    case BN_LAYER_BLOCK5_POOL: return "block5_pool";
    }
    return "unknown";
}

int bn_vgg16_pooling_parse(const char *s, bn_pooling *out) {
    static const bn_pooling all[] = {BN_POOLING_NONE, BN_POOLING_AVG, BN_POOLING_MAX};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, bn_vgg16_pooling_name(all[i])) == 0) {
            *out = all[i];
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_vgg16_pooling_name(bn_pooling p) {
    switch (p) {
    case BN_POOLING_NONE: return "none";
    case BN_POOLING_AVG: return "avg";
    case BN_POOLING_MAX: return "max";
    }
    return "unknown";
}
