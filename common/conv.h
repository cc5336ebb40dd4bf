/*
 * conv.h: the convolution kernels behind one narrow interface.
 *
 * VGG16 needs exactly one convolution: 3x3, stride 1, zero padding 1 ("same"),
 * followed by bias and ReLU. Every engine implements that and nothing else, on
 * NHWC float32 tensors, so engines are interchangeable and each is tested
 * against the exact direct one.
 *
 *   engine    file             notes
 *   direct    conv_direct.c    im2col + OpenBLAS sgemm; the exact reference
 *   winograd  conv_winograd.c  Winograd minimal filtering (fast engine)
 *
 * A bn_conv holds one layer's weights already rearranged for its engine
 * (done once, at creation). Forward calls allocate nothing: the caller passes
 * a workspace of bn_conv_workspace() bytes.
 */
#ifndef BN_CONV_H
#define BN_CONV_H

#include "error.h"
#include <stddef.h>

typedef enum { BN_CONV_AUTO, BN_CONV_DIRECT, BN_CONV_WINOGRAD } bn_conv_engine;

typedef struct bn_conv bn_conv;

/* kernel (3, 3, cin, cout) as Keras stores it; bias (cout). Both are copied. */
int bn_conv_create(bn_conv **out, bn_conv_engine engine, int cin, int cout, const float *kernel,
                   const float *bias, bn_error *err);
void bn_conv_free(bn_conv *c);

/* Which engine a layer actually uses (AUTO resolved at creation). */
bn_conv_engine bn_conv_engine_of(const bn_conv *c);

/* Bytes of scratch memory bn_conv_forward needs for a (n, h, w) input. */
size_t bn_conv_workspace(const bn_conv *c, int n, int h, int w);

/* in (n, h, w, cin) -> out (n, h, w, cout) = relu(conv3x3_same(in) + bias).
 * in and out must not overlap. workspace: bn_conv_workspace() bytes, 64-byte aligned. */
void bn_conv_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                     void *workspace);

/* The same layer followed by the 2x2 max pool: in (n, h, w, cin) -> out
 * (n, h/2, w/2, cout) = maxpool2x2(relu(conv3x3_same(in) + bias)), h and w even.
 * Engines that can (Winograd) fuse the two and never write the full-size
 * output; the others run bn_conv_forward into the workspace, then the pool.
 * in and out must not overlap. workspace: bn_conv_workspace_pool() bytes,
 * 64-byte aligned. */
size_t bn_conv_workspace_pool(const bn_conv *c, int n, int h, int w);
void bn_conv_forward_pool(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                          void *workspace);

/* in (n, h, w, c) -> out (n, h/2, w/2, c): 2x2 max pool, stride 2 (h, w even). */
void bn_conv_maxpool2x2(const float *in, float *out, int n, int h, int w, int c);

/* ---- every other convolution: conv_gemm.c --------------------------------
 * Any kernel, stride, padding, dilation and group count, on NHWC float32, one
 * image at a time (so results never depend on the batch): 1x1 stride 1 as a
 * plain GEMM over the image's pixels, depthwise (group == cin == cout) as its
 * own loop, the rest im2col + sgemm per group, in row chunks of a fixed size.
 * Every multiplication is performed: it is also the exact engine. */
typedef struct {
    int cin, cout;
    int kh, kw, sh, sw;
    int pt, pl, pb, pr; /* pads: top, left, bottom, right */
    int dh, dw, group;
    int relu; /* ReLU after the bias */
} bn_conv_geom;

typedef struct bn_conv_gemm bn_conv_gemm;

/* kernel (kh, kw, cin/group, cout), bias (cout) or NULL (zeros); copied.
 * Fails with BN_EINVAL for a geometry that is not a convolution. */
int bn_conv_gemm_create(bn_conv_gemm **out, const bn_conv_geom *g, const float *kernel,
                        const float *bias, bn_error *err);
void bn_conv_gemm_free(bn_conv_gemm *c);
/* Output size for an h x w input (0 when the kernel does not fit). */
void bn_conv_gemm_out_size(const bn_conv_geom *g, int h, int w, int *oh, int *ow);
/* Scratch bytes for an h x w input, whatever the batch. */
size_t bn_conv_gemm_workspace(const bn_conv_gemm *c, int h, int w);
/* in (n, h, w, cin) -> out (n, oh, ow, cout); in and out must not overlap. */
void bn_conv_gemm_forward(const bn_conv_gemm *c, const float *in, float *out, int n, int h, int w,
                          void *workspace);

/* Whether the Winograd engine runs its fast (AVX-512) code on this CPU
 * ($BN_WINOGRAD_PORTABLE forces the portable build, for tests). The two
 * builds round differently: vectors record which one computed them. */
int bn_conv_winograd_fast(void);

/* The engines' numerical version, recorded with every stored vector: 2 from
 * bottleneck 0.2.0, where an image's output stopped depending on its batch
 * (1: versions up to 0.1.0, whose Winograd engine could also write past its
 * workspace on partial batches). */
#define BN_CONV_ENGINE_VERSION 2

/* The code that computes for a resolved engine, as recorded with vectors:
 * "direct", "winograd-avx512" or "winograd-portable" (the two builds round
 * differently; each gives the same bytes for the same image). */
const char *bn_conv_engine_id(bn_conv_engine resolved);

int bn_conv_engine_parse(const char *s, bn_conv_engine *out); /* "auto"|"direct"|"winograd" */
const char *bn_conv_engine_name(bn_conv_engine e);

#endif
