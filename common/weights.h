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
 * then the user cache ($XDG_CACHE_HOME or ~/.cache, /bottleneck/), and
 * fetching them into that cache (--download).
 *
 * libhdf5 is not used concurrently: load weights from one thread at a time.
 */
#ifndef BN_WEIGHTS_H
#define BN_WEIGHTS_H

#include "download.h"
#include "error.h"

#include <stddef.h>

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

/* Fetch the official weights into <cache>/BN_VGG16_WEIGHTS_FILE (atomically,
 * md5-verified: see download.h) and write that path to out_path. url NULL
 * means $BOTTLENECK_WEIGHTS_URL if set and non-empty (a mirror, or a test
 * server), else BN_VGG16_WEIGHTS_URL. The expected md5 is
 * BN_VGG16_WEIGHTS_MD5 unless $BOTTLENECK_WEIGHTS_MD5 is set and non-empty
 * (for a mirror serving other weights, e.g. ../shared's random ones).
 * A cached file that already has that md5 is kept and nothing is fetched. */
int bn_weights_download(char *out_path, size_t n, const char *url, bn_download_progress progress,
                        void *ctx, bn_error *err);

/* The same, into dest (--download --weights FILE) instead of the cache:
 * a dest that already has the md5 is kept; dest is complete or absent. A
 * dest that exists with other contents is replaced only when replace is set
 * (the cache's own file, damaged); a user's file is not (BN_EINVAL). */
int bn_weights_download_to(const char *dest, int replace, const char *url,
                           bn_download_progress progress, void *ctx, bn_error *err);

#endif
