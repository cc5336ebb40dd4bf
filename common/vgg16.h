/*
 * vgg16.h: the VGG16 convolutional base as a sequence of layer calls.
 *
 *   block1: conv 3->64, conv 64->64, pool        (S   -> S/2)
 *   block2: conv 64->128, conv 128->128, pool    (S/2 -> S/4)
 *   block3: 3 x conv ->256, pool                 (S/4 -> S/8)
 *   block4: 3 x conv ->512, pool                 (S/8 -> S/16)
 *   block5: 3 x conv ->512, pool                 (S/16-> S/32)
 *
 * All tensors NHWC float32. Input size S must be a multiple of 32.
 * A bn_vgg16 is that graph (graph.h) prepared for up to max_batch images:
 * it owns its kernels and activation buffers, so forward calls allocate
 * nothing.
 */
#ifndef BN_VGG16_H
#define BN_VGG16_H

#include "conv.h"
#include "error.h"
#include "weights.h"

typedef enum {
    BN_LAYER_BLOCK3_POOL = 3,
    BN_LAYER_BLOCK4_POOL = 4,
    BN_LAYER_BLOCK5_POOL = 5
} bn_layer;
typedef enum { BN_POOLING_NONE, BN_POOLING_AVG, BN_POOLING_MAX } bn_pooling;

typedef struct bn_vgg16 bn_vgg16;
struct bn_graph;

/* The network up to `last` as a graph (graph.h): input "input_1" (S, S, 3),
 * tensors named as Keras names its layers (block1_conv1 ... block5_pool, each
 * conv's output after its ReLU), flattened in Keras' (y, x, c) order. */
int bn_vgg16_build_graph(struct bn_graph **out, const bn_vgg16_weights *w, bn_layer last,
                         bn_error *err);

/* Prepare the network for inputs of size x size, batches up to max_batch.
 * Only the layers up to `last` are built. Weights may be freed afterwards. */
int bn_vgg16_create(bn_vgg16 **out, const bn_vgg16_weights *w, bn_conv_engine engine, int size,
                    int max_batch, bn_layer last, bn_error *err);
/* The same with the Winograd products in a resolved precision (conv.h). */
int bn_vgg16_create_precision(bn_vgg16 **out, const bn_vgg16_weights *w, bn_conv_engine engine,
                              bn_precision precision, int size, int max_batch, bn_layer last,
                              bn_error *err);
void bn_vgg16_free(bn_vgg16 *net);

/* Features per image for a layer and pooling at this input size:
 * none: (S/2^k)^2 * C (flattened y, x, c as Keras' Flatten), avg/max: C.
 * 0 when layer, pooling or size is not valid. */
int bn_vgg16_dim(bn_layer layer, bn_pooling pooling, int size);

/* in (n, S, S, 3) preprocessed -> out (n, bn_vgg16_dim(layer, pooling, S)).
 * n <= max_batch, layer <= last. Returns 0 (errors only for bad arguments). */
/* The engine the network's convolutions resolved to (conv.h). */
bn_conv_engine bn_vgg16_engine(const bn_vgg16 *net);
/* The id recorded with its vectors (bn_graph_engine_id). */
const char *bn_vgg16_engine_id(const bn_vgg16 *net);

int bn_vgg16_forward(bn_vgg16 *net, const float *in, int n, bn_layer layer, bn_pooling pooling,
                     float *out, bn_error *err);

int bn_vgg16_layer_parse(const char *s, bn_layer *out); /* "block3_pool" ... */
const char *bn_vgg16_layer_name(bn_layer l);
int bn_vgg16_pooling_parse(const char *s, bn_pooling *out); /* "none"|"avg"|"max" */
const char *bn_vgg16_pooling_name(bn_pooling p);

#endif
