/*
 * graph.h: a network as data, and the one executor that runs it.
 *
 * A bn_graph is a list of nodes in execution order; each node has an
 * operator, named input tensors, one named output tensor, attributes and
 * (for Conv and Gemm) its own copy of the weights. Every network runs through
 * it: VGG16 from the Keras .h5 (vgg16.c builds the graph) and any classic CNN
 * read from an ONNX file (onnx.c).
 *
 * Tensors are float32 and held NHWC (n, h, w, c) whatever the file's layout;
 * shapes below are per image (c, h, w), with h = w = 1 for vectors. A graph's
 * `flatten_chw` says in which order a tensor is flattened into a feature
 * vector: ONNX's own (c, y, x), or Keras' (y, x, c), which NHWC already is.
 *
 * Life of a graph:
 *   bn_graph_new, bn_graph_add_* (builders: nodes in topological order; an
 *     input must be the graph input or the output of an earlier node, so a
 *     cycle or an unknown tensor is an error at the node that names it)
 *   bn_graph_infer (shapes for an input size; bn_graph_tensor_* read them)
 *   bn_graph_prepare (fuse Conv+Relu(+2x2 MaxPool), create the convolution
 *     engines, drop nodes the kept tensors do not need, plan the activation
 *     buffers by liveness for max_batch images, allocate everything once)
 *   bn_graph_run (allocates nothing; any number of times)
 *   bn_graph_free
 *
 * Determinism: a stored vector must not depend on the batch it was computed
 * in. Every operator here works image by image (BLAS calls have M = the
 * pixels of one image), reductions run in a fixed order, and the Winograd
 * engine's tiles are independent of their batch neighbours (conv.h).
 */
#ifndef BN_GRAPH_H
#define BN_GRAPH_H

#include "conv.h"
#include "error.h"

#include <stddef.h>

typedef enum {
    BN_OP_CONV,       /* any kernel, stride, pads, dilation, group; bias; optional ReLU */
    BN_OP_RELU,       /* max(x, 0) */
    BN_OP_CLIP,       /* min(max(x, lo), hi) */
    BN_OP_MAXPOOL,    /* kernel, stride, pads, ceil_mode */
    BN_OP_AVGPOOL,    /* kernel, stride, pads, ceil_mode, count_include_pad */
    BN_OP_GLOBAL_AVG, /* (c, h, w) -> (c, 1, 1) */
    BN_OP_GLOBAL_MAX,
    BN_OP_LRN,     /* across channels: size, alpha, beta, bias */
    BN_OP_CONCAT,  /* along channels */
    BN_OP_ADD,     /* two tensors of one shape */
    BN_OP_FLATTEN, /* (c, h, w) -> (c*h*w, 1, 1) in (c, y, x) order (ONNX's) */
    BN_OP_GEMM,    /* (k, 1, 1) -> (m, 1, 1): x W + b */
    BN_OP_SOFTMAX  /* over the channels of a (c, 1, 1) tensor */
} bn_op;
#define BN_OP_COUNT (BN_OP_SOFTMAX + 1)

typedef struct {
    int c, h, w;
} bn_shape;

/* Attributes of a node; each op reads the ones it needs. */
typedef struct {
    int kh, kw;              /* conv and pool kernel */
    int sh, sw;              /* strides */
    int pt, pl, pb, pr;      /* pads: top, left, bottom, right */
    int dh, dw;              /* conv dilations */
    int group;               /* conv groups (1, cin for depthwise) */
    int relu;                /* conv: ReLU after the bias */
    int ceil_mode;           /* pools: output size rounded up */
    int count_include_pad;   /* average pool: pads count in the divisor */
    int size;                /* LRN window */
    float alpha, beta, bias; /* LRN */
    float lo, hi;            /* Clip */
} bn_node_attrs;

/* Defaults: 1x1 kernel, stride 1, no pads, dilation 1, group 1, no ReLU,
 * LRN size 1, alpha 1e-4, beta 0.75, bias 1, Clip (-inf, +inf). */
void bn_graph_attrs_default(bn_node_attrs *a);

typedef struct bn_graph bn_graph;

/* An empty graph whose input tensor is `input` with `channels` channels. */
int bn_graph_new(bn_graph **out, const char *input, int channels, int flatten_chw, bn_error *err);
void bn_graph_free(bn_graph *g);

/* Builders. `name` names the node in errors; `out` is the output tensor's
 * name, unique in the graph. Weights are copied.
 * Conv: kernel (kh, kw, cin/group, cout) as Keras stores it, bias (cout) or
 * NULL for zeros. Gemm: weight (k, m) row-major, bias (m) or NULL. */
int bn_graph_add_conv(bn_graph *g, const char *name, const char *in, const char *out, int cin,
                      int cout, const bn_node_attrs *a, const float *kernel, const float *bias,
                      bn_error *err);
int bn_graph_add_gemm(bn_graph *g, const char *name, const char *in, const char *out, int k, int m,
                      const float *weight, const float *bias, bn_error *err);
/* Every other op; nin inputs (2 for Add, >= 1 for Concat, else 1). */
int bn_graph_add(bn_graph *g, bn_op op, const char *name, const char *const *in, int nin,
                 const char *out, const bn_node_attrs *a, bn_error *err);
/* A second name for an existing tensor (Identity, Dropout at inference). */
int bn_graph_alias(bn_graph *g, const char *name, const char *existing, bn_error *err);

/* Shapes of every tensor for an input of h x w pixels. Fails with a message
 * naming the node for a shape the op cannot take (channel mismatch, empty
 * output, absurd size). */
int bn_graph_infer(bn_graph *g, int h, int w, bn_error *err);

/* Tensors, in definition order (0 is the input); names include aliases. */
int bn_graph_tensor_count(const bn_graph *g);
const char *bn_graph_tensor_name(const bn_graph *g, int i);
bn_shape bn_graph_tensor_shape(const bn_graph *g, int i); /* after bn_graph_infer */
int bn_graph_find(const bn_graph *g, const char *name);   /* index or -1 */
const char *bn_graph_input_name(const bn_graph *g);

/* The tensor a feature extractor reads by default: the input of the first
 * Flatten or Gemm (the classifier's input: GoogLeNet's pool5/7x7_s1), else the input of a final
 * Softmax (SqueezeNet's pool10), else the last tensor. */
const char *bn_graph_default_feature(const bn_graph *g);

/* After bn_graph_prepare: the engine the 3x3 convolutions resolved to (the
 * one that decides the vectors' rounding: conv.h's bn_conv_engine_id), or
 * BN_CONV_DIRECT when every convolution runs on the exact general engine. */
bn_conv_engine bn_graph_engine(const bn_graph *g);

/* Before bn_graph_prepare: the arithmetic of the 3x3 convolutions' Winograd
 * products (conv.h; resolved, not BN_PRECISION_FAST). Default FP32. The
 * general convolutions (conv_gemm.c) follow it under BN_PRECISION_AMX (tile
 * GEMMs, depthwise excepted) and stay FP32 otherwise, as every other
 * operator does. */
void bn_graph_set_precision(bn_graph *g, bn_precision precision);
/* After bn_graph_prepare: the precision the 3x3 convolutions run in (FP32
 * when they resolved to the direct engine), and the id recorded with the
 * vectors: bn_conv_engine_id_network of the two, with "+openblas-CORE"
 * appended when OpenBLAS computes a part (the direct engine, the general
 * convolutions, Gemm: its kernels, chosen per CPU, sum in their own orders),
 * CORE the kernels' name in lower case ("direct+openblas-haswell"). Vectors
 * of one id are the same bytes on any host. */
bn_precision bn_graph_precision(const bn_graph *g);
const char *bn_graph_engine_id(const bn_graph *g);

/* The op that writes tensor i ("input" for the graph input). */
const char *bn_graph_tensor_op(const bn_graph *g, int i);

/* Make the graph runnable for batches of up to max_batch images of the
 * inferred size, with results available for the `nkeep` tensors named in
 * `keep`. engine: BN_CONV_DIRECT (exact: im2col/GEMM everywhere) or
 * BN_CONV_WINOGRAD / BN_CONV_AUTO (Winograd for 3x3 stride-1 pad-1 convs
 * followed by ReLU, the general engine for the rest). */
int bn_graph_prepare(bn_graph *g, bn_conv_engine engine, int max_batch, const char *const *keep,
                     int nkeep, bn_error *err);

/* in (n, h, w, channels) -> every kept tensor. n <= max_batch. */
int bn_graph_run(bn_graph *g, const float *in, int n, bn_error *err);

/* A kept tensor's data after bn_graph_run: (n, h, w, c), NHWC. */
const float *bn_graph_output(const bn_graph *g, const char *name);

/* How many feature values a kept tensor gives per image with this pooling
 * (0: none = c*h*w, else c), and writing them: out (n, dim). "none" follows
 * the graph's flatten order (see above). pooling: 0 none, 1 avg, 2 max, as
 * bn_pooling (vgg16.h). */
int bn_graph_feature_dim(const bn_graph *g, const char *name, int pooling);
int bn_graph_features(const bn_graph *g, const char *name, int pooling, int n, float *out,
                      bn_error *err);

/* For benchmarks: while seconds is not NULL, bn_graph_run adds the wall
 * time of each op type to seconds[op] (BN_OP_COUNT entries). */
void bn_graph_profile(bn_graph *g, double *seconds);

/* Bytes of activations and workspace allocated by bn_graph_prepare. */
size_t bn_graph_memory(const bn_graph *g);

const char *bn_graph_op_name(bn_op op);

#endif
