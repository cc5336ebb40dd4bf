/*
 * weights.h: the VGG16 convolutional base's weights, read from a Keras HDF5
 * file (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, or a full model
 * file whose top layers are ignored).
 *
 * The loader follows each layer group's `weight_names` attribute, so both the
 * legacy spelling (block1_conv1_W_1:0) and the newer one (block1_conv1/kernel:0)
 * load. Every shape is checked against the VGG16 table below.
 *
 * Also owns where weights are looked for: --weights, then $BOTTLENECK_WEIGHTS,
 * then the user cache ($XDG_CACHE_HOME or ~/.cache, /bottleneck/).
 */
#ifndef BN_WEIGHTS_H
#define BN_WEIGHTS_H

#include "error.h"

#define BN_VGG16_NCONV 13
#define BN_VGG16_WEIGHTS_FILE "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
#define BN_VGG16_WEIGHTS_URL                                                                       \
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"                          \
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
#define BN_VGG16_WEIGHTS_MD5 "6d6bbae143d832006294945121d1f1fc"

/* The 13 convolutions: name, input channels, output channels. */
typedef struct {
    const char *name;
    int cin, cout;
} bn_vgg16_conv_spec;
extern const bn_vgg16_conv_spec bn_vgg16_convs[BN_VGG16_NCONV];

typedef struct {
    int cin, cout;
    float *kernel; /* (3, 3, cin, cout): kh, kw, in, out, as Keras stores it */
    float *bias;   /* (cout) */
} bn_conv_weights;

typedef struct {
    bn_conv_weights conv[BN_VGG16_NCONV];
    char sha256[65]; /* of the weights file: identifies the feature set */
} bn_vgg16_weights;

/* Load and check all 13 kernels and biases. On error *w is left empty. */
int bn_weights_load(bn_vgg16_weights *w, const char *path, bn_error *err);
void bn_weights_free(bn_vgg16_weights *w);

/* The user cache directory for weights, without creating it. */
int bn_weights_cache_dir(char *out, size_t n, bn_error *err);

/* Resolve which file to use: explicit (may be NULL), else $BOTTLENECK_WEIGHTS,
 * else <cache>/BN_VGG16_WEIGHTS_FILE. Fails with a message that names every
 * place tried and suggests --download when none exists. */
int bn_weights_locate(char *out, size_t n, const char *explicit_path, bn_error *err);

#endif
