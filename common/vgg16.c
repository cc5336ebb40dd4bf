/*
 * vgg16.c: the VGG16 convolutional base (vgg16.h), forward only.
 *
 * Owns: the network's architecture (the table below and the one visible
 * sequence of layer calls in bn_vgg16_forward), the activation buffers, the
 * final pooling (none / avg / max) and the layer and pooling names.
 *
 * The kernels are not here: each conv layer is a bn_conv (conv.h), built by
 * whichever engine was asked for, so this file reads the same whatever runs
 * underneath.
 *
 * Memory: bn_vgg16_create allocates everything a forward call needs, for up
 * to max_batch images: two ping-pong activation buffers, each large enough
 * for the largest layer output (block1: max_batch x S x S x 64 floats), and
 * one workspace, the largest any conv layer asks for. bn_vgg16_forward
 * allocates nothing. At S = 224 and batch 8 that is 2 x 98 MiB of activations
 * plus the conv workspace (a few MiB for Winograd; for the direct engine
 * 64 MiB of im2col plus 98 MiB where a layer and its pool run as two passes).
 *
 * The last conv of each block and its pool are one call
 * (bn_conv_forward_pool), which the Winograd engine does in one pass.
 */
#include "vgg16.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The 13 conv layers: name, input and output channels. A 2x2 max pool
 * follows conv 1, 3, 6, 9 and 12 (counting from 0). */
static const struct {
    const char *name;
    int cin, cout;
} vgg_convs[BN_VGG16_NCONV] = {
    {"block1_conv1", 3, 64},    {"block1_conv2", 64, 64},   {"block2_conv1", 64, 128},
    {"block2_conv2", 128, 128}, {"block3_conv1", 128, 256}, {"block3_conv2", 256, 256},
    {"block3_conv3", 256, 256}, {"block4_conv1", 256, 512}, {"block4_conv2", 512, 512},
    {"block4_conv3", 512, 512}, {"block5_conv1", 512, 512}, {"block5_conv2", 512, 512},
    {"block5_conv3", 512, 512},
};

/* Input side of conv layer i, in units of S: 1, 1, 1/2, 1/2, 1/4 x3, ... */
static const int vgg_conv_shift[BN_VGG16_NCONV] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};

struct bn_vgg16 {
    int size, max_batch;
    bn_layer last;
    int nconv; /* conv layers built: 7, 10 or 13 */
    bn_conv *conv[BN_VGG16_NCONV];
    float *act[2]; /* ping-pong activations, act_floats each */
    size_t act_floats;
    void *workspace; /* ws_bytes, shared by every conv layer */
    size_t ws_bytes;
};

/* Whether a 2x2 max pool follows conv layer i (the last of each block). */
static int vgg_pool_after(int i) {
    return i == 1 || i == 3 || i == 6 || i == 9 || i == 12;
}

/* Conv layers that come before the pool of `last`. */
static int vgg_nconv(bn_layer last) {
    switch (last) {
    case BN_LAYER_BLOCK3_POOL: return 7;
    case BN_LAYER_BLOCK4_POOL: return 10;
    case BN_LAYER_BLOCK5_POOL: return 13;
    }
    return 0;
}

static void *vgg_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

int bn_vgg16_create(bn_vgg16 **out, const bn_vgg16_weights *w, bn_conv_engine engine, int size,
                    int max_batch, bn_layer last, bn_error *err) {
    *out = NULL;
    int nconv = vgg_nconv(last);
    if (nconv == 0)
        return bn_fail(err, BN_EINVAL, "vgg16: unknown last layer %d", (int)last);
    if (size < 32 || size % 32 != 0 || size > 8192)
        return bn_fail(err, BN_EINVAL, "vgg16: input size %d is not a multiple of 32 (32..8192)",
                       size);
    if (max_batch < 1 || (size_t)max_batch * size * size * 64 > ((size_t)1 << 40) / 4)
        return bn_fail(err, BN_EINVAL, "vgg16: batch of %d at size %d is out of range", max_batch,
                       size);
    for (int i = 0; i < nconv; i++) {
        const bn_conv_weights *cw = &w->conv[i];
        if (cw->cin != vgg_convs[i].cin || cw->cout != vgg_convs[i].cout)
            return bn_fail(err, BN_EINVAL, "vgg16: %s has %d -> %d channels, expected %d -> %d",
                           vgg_convs[i].name, cw->cin, cw->cout, vgg_convs[i].cin,
                           vgg_convs[i].cout);
        if (!cw->kernel || !cw->bias)
            return bn_fail(err, BN_EINVAL, "vgg16: %s has no weights loaded", vgg_convs[i].name);
    }

    bn_vgg16 *net = calloc(1, sizeof *net);
    if (!net)
        return bn_fail(err, BN_ENOMEM, "vgg16: out of memory");
    net->size = size;
    net->max_batch = max_batch;
    net->last = last;
    net->nconv = nconv;

    int rc = BN_OK;
    for (int i = 0; i < nconv && rc == BN_OK; i++) {
        int s = size >> vgg_conv_shift[i];
        rc = bn_conv_create(&net->conv[i], engine, vgg_convs[i].cin, vgg_convs[i].cout,
                            w->conv[i].kernel, w->conv[i].bias, err);
        if (rc == BN_OK) {
            size_t ws = vgg_pool_after(i) ? bn_conv_workspace_pool(net->conv[i], max_batch, s, s)
                                          : bn_conv_workspace(net->conv[i], max_batch, s, s);
            size_t act = (size_t)max_batch * s * s * vgg_convs[i].cout;
            net->ws_bytes = ws > net->ws_bytes ? ws : net->ws_bytes;
            net->act_floats = act > net->act_floats ? act : net->act_floats;
        }
    }
    if (rc == BN_OK) {
        net->act[0] = vgg_alloc(net->act_floats * sizeof(float));
        net->act[1] = vgg_alloc(net->act_floats * sizeof(float));
        net->workspace = vgg_alloc(net->ws_bytes ? net->ws_bytes : 64);
        if (!net->act[0] || !net->act[1] || !net->workspace)
            rc = bn_fail(err, BN_ENOMEM,
                         "vgg16: out of memory for activations of %d images at size %d "
                         "(%zu MiB)",
                         max_batch, size,
                         (2 * net->act_floats * sizeof(float) + net->ws_bytes) >> 20);
    }
    if (rc != BN_OK) {
        bn_vgg16_free(net);
        return rc;
    }
    *out = net;
    return BN_OK;
}

void bn_vgg16_free(bn_vgg16 *net) {
    if (!net)
        return;
    for (int i = 0; i < BN_VGG16_NCONV; i++)
        bn_conv_free(net->conv[i]);
    free(net->act[0]);
    free(net->act[1]);
    free(net->workspace);
    free(net);
}

bn_conv_engine bn_vgg16_engine(const bn_vgg16 *net) {
    return bn_conv_engine_of(net->conv[0]);
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

/* One conv layer of the table: in (n, s, s, cin) -> out (n, s, s, cout). */
static void vgg_conv(bn_vgg16 *net, int i, const float *in, float *out, int n, int s) {
    assert(bn_conv_workspace(net->conv[i], n, s, s) <= net->ws_bytes);
    bn_conv_forward(net->conv[i], in, out, n, s, s, net->workspace);
}

/* Conv layer i and the pool after it: in (n, s, s, cin) -> out (n, s/2, s/2, cout),
 * one pass where the engine fuses them (the full-size output is never written). */
static void vgg_conv_pool(bn_vgg16 *net, int i, const float *in, float *out, int n, int s) {
    assert(bn_conv_workspace_pool(net->conv[i], n, s, s) <= net->ws_bytes);
    bn_conv_forward_pool(net->conv[i], in, out, n, s, s, net->workspace);
}

/* x (n, s, s, c) -> out (n, dim): flattened as stored (NHWC is Keras'
 * y, x, c Flatten order), or averaged / maxed over (y, x). */
static void vgg_head(const float *x, float *out, int n, int s, int c, bn_pooling pooling) {
    size_t hw = (size_t)s * s;
    if (pooling == BN_POOLING_NONE) {
        memcpy(out, x, (size_t)n * hw * c * sizeof *out);
        return;
    }
    for (int b = 0; b < n; b++) {
        const float *img = x + (size_t)b * hw * c;
        float *o = out + (size_t)b * c;
        for (int k = 0; k < c; k++) {
            if (pooling == BN_POOLING_MAX) {
                float m = img[k];
                for (size_t p = 1; p < hw; p++)
                    m = img[p * c + k] > m ? img[p * c + k] : m;
                o[k] = m;
            } else {
                double sum = 0;
                for (size_t p = 0; p < hw; p++)
                    sum += img[p * c + k];
                o[k] = (float)(sum / (double)hw);
            }
        }
    }
}

int bn_vgg16_forward(bn_vgg16 *net, const float *in, int n, bn_layer layer, bn_pooling pooling,
                     float *out, bn_error *err) {
    if (n < 0 || n > net->max_batch)
        return bn_fail(err, BN_EINVAL, "vgg16: batch of %d images, the network was built for %d", n,
                       net->max_batch);
    if (vgg_nconv(layer) == 0 || vgg_nconv(layer) > net->nconv)
        return bn_fail(err, BN_EINVAL, "vgg16: layer %d not built (network ends at %s)", (int)layer,
                       bn_layer_name(net->last));
    if (pooling != BN_POOLING_NONE && pooling != BN_POOLING_AVG && pooling != BN_POOLING_MAX)
        return bn_fail(err, BN_EINVAL, "vgg16: unknown pooling %d", (int)pooling);
    if (n == 0)
        return BN_OK;

    const int S = net->size;
    float *a = net->act[0], *b = net->act[1];

    /* block1: in (n, S, S, 3) */
    vgg_conv(net, 0, in, a, n, S);     /* block1_conv1 -> (n, S, S, 64) */
    vgg_conv_pool(net, 1, a, b, n, S); /* block1_conv2, block1_pool -> (n, S/2, S/2, 64) */
    /* block2 */
    vgg_conv(net, 2, b, a, n, S / 2);      /* block2_conv1 -> (n, S/2, S/2, 128) */
    vgg_conv_pool(net, 3, a, b, n, S / 2); /* block2_conv2, block2_pool -> (n, S/4, S/4, 128) */
    /* block3 */
    vgg_conv(net, 4, b, a, n, S / 4);      /* block3_conv1 -> (n, S/4, S/4, 256) */
    vgg_conv(net, 5, a, b, n, S / 4);      /* block3_conv2 -> (n, S/4, S/4, 256) */
    vgg_conv_pool(net, 6, b, a, n, S / 4); /* block3_conv3, block3_pool -> (n, S/8, S/8, 256) */
    if (layer == BN_LAYER_BLOCK3_POOL) {
        vgg_head(a, out, n, S / 8, 256, pooling);
        return BN_OK;
    }
    /* block4 */
    vgg_conv(net, 7, a, b, n, S / 8);      /* block4_conv1 -> (n, S/8, S/8, 512) */
    vgg_conv(net, 8, b, a, n, S / 8);      /* block4_conv2 -> (n, S/8, S/8, 512) */
    vgg_conv_pool(net, 9, a, b, n, S / 8); /* block4_conv3, block4_pool -> (n, S/16, S/16, 512) */
    if (layer == BN_LAYER_BLOCK4_POOL) {
        vgg_head(b, out, n, S / 16, 512, pooling);
        return BN_OK;
    }
    /* block5 */
    vgg_conv(net, 10, b, a, n, S / 16);      /* block5_conv1 -> (n, S/16, S/16, 512) */
    vgg_conv(net, 11, a, b, n, S / 16);      /* block5_conv2 -> (n, S/16, S/16, 512) */
    vgg_conv_pool(net, 12, b, a, n, S / 16); /* block5_conv3, block5_pool -> (n, S/32, S/32, 512) */
    vgg_head(a, out, n, S / 32, 512, pooling);
    return BN_OK;
}

int bn_layer_parse(const char *s, bn_layer *out) {
    static const bn_layer all[] = {BN_LAYER_BLOCK3_POOL, BN_LAYER_BLOCK4_POOL,
                                   BN_LAYER_BLOCK5_POOL};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, bn_layer_name(all[i])) == 0) {
            *out = all[i];
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_layer_name(bn_layer l) {
    switch (l) {
    case BN_LAYER_BLOCK3_POOL: return "block3_pool";
    case BN_LAYER_BLOCK4_POOL: return "block4_pool";
    case BN_LAYER_BLOCK5_POOL: return "block5_pool";
    }
    return "unknown";
}

int bn_pooling_parse(const char *s, bn_pooling *out) {
    static const bn_pooling all[] = {BN_POOLING_NONE, BN_POOLING_AVG, BN_POOLING_MAX};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, bn_pooling_name(all[i])) == 0) {
            *out = all[i];
            return BN_OK;
        }
    return BN_EINVAL;
}

const char *bn_pooling_name(bn_pooling p) {
    switch (p) {
    case BN_POOLING_NONE: return "none";
    case BN_POOLING_AVG: return "avg";
    case BN_POOLING_MAX: return "max";
    }
    return "unknown";
}
