/*
 * conv_internal.h: what an engine provides to conv.c. Not installed; only
 * conv*.c include it.
 */
#ifndef BN_CONV_INTERNAL_H
#define BN_CONV_INTERNAL_H

#include "conv.h"

typedef struct bn_conv_ops {
    /* Rearrange kernel (3,3,cin,cout) into c->packed for this engine. */
    int (*prepare)(bn_conv *c, const float *kernel, bn_error *err);
    size_t (*workspace)(const bn_conv *c, int n, int h, int w);
    void (*forward)(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                    void *workspace);
    void (*release)(bn_conv *c); /* free c->packed */
    /* Optional (NULL: conv.c runs forward, then bn_conv_maxpool2x2): conv + bias +
     * ReLU + 2x2 max pool in one pass, out (n, h/2, w/2, cout). */
    size_t (*workspace_pool)(const bn_conv *c, int n, int h, int w);
    void (*forward_pool)(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                         void *workspace);
} bn_conv_ops;

struct bn_conv {
    bn_conv_engine engine;
    bn_precision precision; /* resolved: FP32, or BF16 or FP16 in the Winograd engine */
    int cin, cout;
    float uscale; /* Winograd FP16: 1 / the power of two U was scaled by (winograd_fp16.h) */
    float *bias;  /* (cout) */
    void *packed; /* engine-specific weights */
    const bn_conv_ops *ops;
};

/* The release of an engine whose c->packed is a malloc'd struct owning one
 * weight array and a hold on the thread pool taken at prepare
 * (bn_pool_acquire): the direct and small engines. weights: that array. */
void bn_conv_release_pooled(bn_conv *c, void *weights);

extern const bn_conv_ops bn_conv_direct_ops;
extern const bn_conv_ops bn_conv_winograd_ops;
extern const bn_conv_ops bn_conv_small_ops;

#endif
