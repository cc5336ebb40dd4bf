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
 *   small     conv_small.c     direct AVX-512 kernel for cin <= 4 (the first
 *                              layer), which AUTO picks beside Winograd
 *
 * A bn_conv holds one layer's weights already rearranged for its engine
 * (done once, at creation). Forward calls allocate nothing: the caller passes
 * a workspace of bn_conv_workspace() bytes.
 */
#ifndef BN_CONV_H
#define BN_CONV_H

#include "cpu.h"
#include "error.h"
#include <stddef.h>

/* AUTO: the fastest engine for each layer (conv.c, conv_resolve). SMALL is
 * only for cin <= 4 on CPUs with AVX-512 or AVX2 (bn_conv_winograd_isa); it is not
 * a command-line choice (bn_conv_engine_parse), as it cannot run a network. */
typedef enum { BN_CONV_AUTO, BN_CONV_DIRECT, BN_CONV_WINOGRAD, BN_CONV_SMALL } bn_conv_engine;

typedef struct bn_conv bn_conv;

/* The arithmetic of the Winograd engine's products (the bulk of the work).
 * FP32: exact to 1e-4 (the default). BF16: V and U rounded to bfloat16,
 * vdpbf16ps dot products of channel pairs accumulated in FP32 (needs
 * avx512_bf16). FP16: V and U in IEEE half, FP16 FMAs over short runs of
 * channels widened to FP32 (needs avx512_fp16). FAST is a request, never a
 * layer's precision: precision.c resolves it to what is fastest on this CPU.
 * The transforms, bias, ReLU and pooling stay FP32 in every case. */
typedef enum {
    BN_PRECISION_FP32,
    BN_PRECISION_FAST,
    BN_PRECISION_BF16,
    BN_PRECISION_FP16,
    BN_PRECISION_AMX
} bn_precision;

/* kernel (3, 3, cin, cout) as Keras stores it; bias (cout). Both are copied. */
int bn_conv_create(bn_conv **out, bn_conv_engine engine, int cin, int cout, const float *kernel,
                   const float *bias, bn_error *err);
/* The same with a resolved precision (FP32, BF16 or FP16; not FAST). Only the
 * Winograd engine has reduced precisions: a layer that resolves to the direct
 * engine runs FP32 (bn_conv_precision_of says which). BN_EINVAL if this CPU
 * cannot run the precision asked for. */
int bn_conv_create_precision(bn_conv **out, bn_conv_engine engine, bn_precision precision, int cin,
                             int cout, const float *kernel, const float *bias, bn_error *err);
bn_precision bn_conv_precision_of(const bn_conv *c);
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
/* The same in a precision: BN_PRECISION_AMX multiplies on AMX tiles where
 * they run here (bfloat16 values, FP32 sums; not depthwise layers), every
 * other precision (and AMX elsewhere) is FP32. */
int bn_conv_gemm_create_precision(bn_conv_gemm **out, const bn_conv_geom *g, const float *kernel,
                                  const float *bias, bn_precision precision, bn_error *err);
/* Whether it runs on AMX tiles (so without OpenBLAS). */
int bn_conv_gemm_uses_amx(const bn_conv_gemm *c);
void bn_conv_gemm_free(bn_conv_gemm *c);
/* Output size for an h x w input (0 when the kernel does not fit). */
void bn_conv_gemm_out_size(const bn_conv_geom *g, int h, int w, int *oh, int *ow);
/* Scratch bytes for an h x w input, whatever the batch. */
size_t bn_conv_gemm_workspace(const bn_conv_gemm *c, int h, int w);
/* in (n, h, w, cin) -> out (n, oh, ow, cout); in and out must not overlap. */
void bn_conv_gemm_forward(const bn_conv_gemm *c, const float *in, float *out, int n, int h, int w,
                          void *workspace);

/* The builds of the Winograd and small engines' hot loops, one picked at
 * run time: AVX-512 (32 zmm registers: 14 tiles x 32 channels per kernel
 * call, and the reduced precisions), AVX2 with FMA (16 ymm: at most 6 tiles
 * x 16 channels; the products are the same sums in the same order as
 * AVX-512's, the transforms the same operations on vectors of 8 floats, and
 * the small engine gives the same bytes, but whether the compiler fuses the
 * transforms' multiply-adds alike in both builds is unproven: each layer
 * within 1e-6, not promised to be the same bytes), and the portable
 * baseline x86-64 build (no FMA, slow). bn_conv_winograd_isa() is the best
 * this CPU runs, or a lesser one forced for tests:
 * $BN_WINOGRAD_ISA=avx2|portable, or $BN_WINOGRAD_PORTABLE non-empty.
 * Vectors record which arithmetic computed them (bn_conv_engine_id): the
 * AVX-512 and AVX2 builds the same ("winograd": the same operations, fused
 * multiply-adds written out, tests/test_winograd_spec.c), the portable build
 * its own (no FMA: a product, then a sum). Each gives the same bytes for the
 * same image. */
typedef enum { BN_WINOGRAD_PORTABLE, BN_WINOGRAD_AVX2, BN_WINOGRAD_AVX512 } bn_winograd_isa;
bn_winograd_isa bn_conv_winograd_isa(void);
/* Whether that build is the AVX-512 one: the reduced precisions need it. */
int bn_conv_winograd_avx512(void);

/* The engines' numerical version, recorded with every stored vector: 5 since
 * the AVX2 and AVX-512 builds compute the same bytes (their transforms'
 * multiply-adds written out, the same in both; vectors moved by up to 5e-6
 * relative; the portable build's bytes did not change), with the ids
 * "winograd" for both and "+openblas-CORE" on vectors that OpenBLAS
 * computed a part of (graph.c); 4 since the AVX2 build's transforms ran on
 * vectors of 8 floats (its vectors moved by up to 5e-6); 3 since AUTO runs
 * the first layer (cin <= 4) on the small engine where it has AVX-512
 * (about 1e-7 relative; 2: from bottleneck 0.2.0, where an image's output
 * stopped depending on its batch; 1: versions up to 0.1.0, whose Winograd
 * engine could also write past its workspace on partial batches). Verify
 * demands identical bytes only from vectors of the same engine id and
 * version: older vectors are judged by the tolerance. */
#define BN_CONV_ENGINE_VERSION 5

/* The arithmetic of a resolved engine, as recorded with vectors: "winograd"
 * (the AVX-512 and AVX2 builds: the same bytes on any CPU with AVX2 and FMA
 * or AVX-512), "winograd-portable" (CPUs without: other bytes) or "direct"
 * (OpenBLAS; a network adds which of its kernels: bn_graph_engine_id). The
 * id names what AUTO runs: "winograd" includes the small engine for layers
 * with cin <= 4 (so BN_CONV_SMALL has that id too; the same bytes in its
 * AVX-512 and AVX2 builds); a network forced to Winograd on such a layer is
 * told apart by bn_conv_engine_id_network. */
const char *bn_conv_engine_id(bn_conv_engine resolved);
/* The same for an engine and a precision: "winograd-avx512-bf16",
 * "winograd-avx512-fp16" (AVX-512 only); FP32 as bn_conv_engine_id. */
const char *bn_conv_engine_id_precision(bn_conv_engine resolved, bn_precision precision);
/* The id of a network's vectors: as bn_conv_engine_id_precision, with
 * "-all" appended ("winograd-all", "winograd-avx512-bf16-all") when
 * Winograd was forced (--conv winograd) on a layer that AUTO gives to the
 * small engine: the first layer then rounds differently (by about 1e-7),
 * and vectors of the same id must be the same bytes (verify.c). */
const char *bn_conv_engine_id_network(bn_conv_engine resolved, bn_precision precision,
                                      int forced_winograd_small);
/* Whether AUTO would give this layer (cin input channels) to the small
 * engine on this CPU. */
int bn_conv_small_fits(int cin);

/* Whether this CPU (and build) runs the Winograd products in this precision:
 * FP32 always, BF16 with avx512_bf16, FP16 with avx512_fp16, both only in
 * the AVX-512 build (not with $BN_WINOGRAD_PORTABLE). FP16 also runs
 * without avx512_fp16 when $BN_FP16_EMULATE is set (non-empty, not "0"):
 * the same sums in software, the same bytes, about 100x slower; for tests
 * and accuracy studies (winograd_fp16.h). */
int bn_conv_winograd_has_precision(bn_precision p);
/* Whether FP16 products would run in software here ($BN_FP16_EMULATE, or no
 * avx512_fp16): `fast` never picks them then. */
int bn_conv_winograd_fp16_emulated(void);

/* A microbenchmark of the products kernel alone, data in L1/L2: the
 * multiply-adds per second (in units of 1e9) of 14 tiles x 32 output channels
 * x 256 input channels, best of `reps` runs of about `seconds` each. 0 when
 * this CPU cannot run the precision. precision.c compares BF16/FP16 with
 * FP32 with it where features alone mislead. */
double bn_conv_winograd_kernel_gmacs(bn_precision p, int reps, double seconds);
/* The products step alone, one thread, on the first block of tiles of a layer
 * (cin -> cout, n images of h x w) as the engine plans it: every (position,
 * 32 output channels) task in the engine's order with its prefetches, V and U
 * distinct per position as in the network; with same_position every task at
 * position 0 (V and U stay in the caches, M is still written at the engine's
 * strides). G multiply-adds per second, best of `reps` runs of about
 * `seconds`; 0 when this CPU cannot run the precision or memory runs out.
 * bench/bench_products prints it per layer (docs/PERFORMANCE.md). */
double bn_conv_winograd_products_gmacs(bn_precision p, int cin, int cout, int n, int h, int w,
                                       int same_position, int reps, double seconds);

/* The input and the output transforms alone, FP32, one thread, over every
 * block of a layer's batch (cin -> cout, n images of h x w; pool: the pooled
 * output) as the engine plans it: V, and the output, past the caches where
 * the engine writes them so. Seconds per batch of each, best of `reps`, and
 * the share of tiles whose input patch crosses the image's edge (loaded
 * pixel by pixel). BN_EINVAL on a bad shape, BN_ENOMEM. bench/bench_transforms
 * prints them per layer (docs/PERFORMANCE.md). */
int bn_conv_winograd_transforms_time(int cin, int cout, int n, int h, int w, int pool, int reps,
                                     double *input_s, double *output_s, double *edge_share);

/* The Winograd engine's F(6x6, 3x3) matrices: G (8 x 3), the kernel
 * transform; B^T (8 x 8), the input transform; A^T (6 x 8), the output
 * transform (interpolation points 0, 1, -1, 2, -2, 1/2, -1/2, infinity). For
 * models of its arithmetic and tests; the engine itself runs them unrolled. */
void bn_conv_winograd_matrices(double g[8][3], double bt[8][8], double at[6][8]);

/* How the Winograd engine runs one layer (conv_winograd.c's wg_geometry):
 * for benchmarks that print it and for the tests. */
typedef struct {
    size_t tb;          /* tiles per block */
    size_t blocks;      /* blocks of the batch */
    size_t block_bytes; /* V + M of one block */
    size_t budget;      /* the V + M bytes the rule allowed */
    const char *rule;   /* "l2" (U re-read per block from the L3), "l3" (U stays
                         * in the L3 between blocks) or "large" (U from memory) */
    int private_blocks; /* each thread its own blocks (with this many threads) */
    int vstream;        /* V written past the caches (AVX-512 build) */
    int stream;         /* output written past the caches (AVX-512 build, aligned) */
} bn_conv_winograd_plan;

/* The plan of a (cin, cout) layer on an (n, h, w) input (pool: the pooled
 * forward) in a resolved precision (FP32, BF16 or FP16), with `threads`
 * threads, for a machine with the caches *caches (bn_cpu_caches() for this
 * one). */
void bn_conv_winograd_plan_for(int cin, int cout, int n, int h, int w, int pool,
                               bn_precision precision, int threads,
                               const bn_cpu_cache_sizes *caches, bn_conv_winograd_plan *out);

int bn_conv_engine_parse(const char *s, bn_conv_engine *out); /* "auto"|"direct"|"winograd" */
const char *bn_conv_engine_name(bn_conv_engine e);

#endif
