/*
 * conv_winograd.c: the fast convolution engine (BN_CONV_WINOGRAD).
 *
 * 3x3 "same" convolution + bias + ReLU on NHWC float32 by Winograd minimal
 * filtering F(6x6, 3x3): each 6x6 block of output pixels ("tile") is computed
 * from the 8x8 input pixels around it with 64 multiplications per (cin, cout)
 * pair instead of 324, a 5.06x cut in arithmetic:
 *
 *   V = B^T d B          input transform, d the 8x8 input patch    (per cin)
 *   U = G g G^T          kernel transform, g the 3x3 kernel        (once, at prepare)
 *   M = sum_ci V (.) U   64 independent matrix products, one per transform
 *                        position p: M_p (tiles, cout) = V_p (tiles, cin) U_p (cin, cout)
 *   Y = A^T M A          output transform, then + bias and ReLU    (per cout)
 *
 * Interpolation points 0, +-1, +-2, +-1/2 and infinity (the best-conditioned
 * set for this size). Measured error: about 1e-6 relative L2 per VGG16 layer
 * against the direct engine, 4e-6 at block5_pool against ../shared/reference
 * (tests/test_winograd.c, docs/PERFORMANCE.md); the direct engine stays the
 * exact reference.
 *
 * Order of work. Each image is tiled on its own, from its top-left pixel
 * (wg_geom), and the tiles of the batch, image after image, are processed in
 * blocks of `tb` tiles:
 *   1. input transform of the block into V (64, tb, cin): a vector of 16
 *      channels is transformed at once (NHWC makes them contiguous);
 *   2. for each p, M[p] = V[p] U[p] with a register-blocked kernel
 *      (WG_ROWS tiles x 32 output channels, accumulators in registers; the
 *      AVX2 build: up to WG_ROWS8 tiles x 16);
 *   3. output transform of M, + bias, ReLU (and the 2x2 max pool for
 *      bn_conv_forward_pool), written to the NHWC output; outputs that fall
 *      off the images (tiles overhang the edges) are dropped.
 * U is stored as U[p][cout/32][cin][32] so the kernel reads it sequentially.
 * Block sizes: see wg_geometry(), which derives them from the data caches
 * found at run time (cpu.h's bn_cpu_caches); they change only how tiles are
 * grouped, never the order of any sum, so the bytes never depend on them.
 *
 * Threads: a small pool of its own (bn_cpu_threads() threads, the caller being
 * thread 0). Work is handed out in small numbered tasks that whichever thread
 * is free takes (step 1: a few tiles; step 2: one position and 32 output
 * channels, or in the AVX2 build one position and all of them, so that only
 * one thread reads each V[p]; step 3: a few tiles), so the threads finish
 * together even when one is slowed; a thread waits only for what the next
 * step needs (V complete before the products, M free before the next block's
 * products).
 * Layers with a small U (block1-2) instead give each thread whole blocks of
 * its own (wg_geometry). Waits spin briefly, then sleep (futex).
 *
 * The hot loops are written with GCC vector extensions and compiled three
 * times, the build picked at run time (bn_conv_winograd_isa): for AVX-512,
 * for AVX2 + FMA (its own products kernel, wg_kernel8, and transforms on
 * vectors of 8 floats, for 16 registers) and for the baseline x86-64
 * target, which is slow but correct anywhere. Every multiply-add is written
 * out (wg_fma_*, WG_MUL_ADD), never left for the compiler to fuse: the
 * AVX-512 and AVX2 builds perform the same operations in the same order and
 * give the same bytes, on any CPU that runs either (tests/
 * test_winograd_spec.c holds each build to a scalar model of them).
 *
 * Memory: U is 64/9 the size of the kernel (67 MB for a 512x512 layer), in
 * transparent huge pages where the system allows (the products stream it);
 * the workspace holds one V block and one M block (one per thread for
 * private blocks). Where V cannot stay in a core's L2 until the products
 * read it (shared blocks of block3-5 are megabytes; block2's U crowds it
 * out), it is written past the caches and prefetched back by the products
 * a position ahead (j->vstream). Forward allocates nothing. docs/PERFORMANCE.md has the
 * measurements behind the choices.
 */
#include "conv_internal.h"
#include "cpu.h"
#include "f16.h"
#include "kcache.h"
#include "pool.h"

#include <assert.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#ifdef WG_PROFILE
#include <stdio.h>
#include <time.h>
double wg_prof[4];
static double wg_cpu(void) {
    struct timespec t;
    clock_gettime(getenv("WG_WALL") ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
/* At exit, the seconds of thread 0 in each step (input, products, output,
 * waits), summed over every forward call: a developer's build only. */
__attribute__((destructor)) static void wg_prof_print(void) {
    fprintf(stderr, "WG_PROFILE input %.1f products %.1f output %.1f waits %.1f ms\n",
            1e3 * wg_prof[0], 1e3 * wg_prof[1], 1e3 * wg_prof[2], 1e3 * wg_prof[3]);
}
#define WG_T(i)                                                                                    \
    do {                                                                                           \
        if (tid == 0) {                                                                            \
            double t_ = wg_cpu();                                                                  \
            wg_prof[i] += t_ - wg_t0;                                                              \
            wg_t0 = t_;                                                                            \
        }                                                                                          \
    } while (0)
#else
#define WG_T(i)                                                                                    \
    do {                                                                                           \
    } while (0)
#endif

/* Output tile edge (m), input tile edge (m + 2) and transform positions. */
#define WG_M 6
#define WG_N 8
#define WG_P 64
/* Rows (tiles) of the register-blocked kernel; 2 x WG_ROWS accumulators. */
#define WG_ROWS 14
/* Output channels per kernel call (two vectors). */
#define WG_COLS 32
/* Block sizes, the thread split and the stream thresholds come from the
 * data caches found at run time (bn_cpu_caches, wg_geometry). Private blocks
 * are for up to WG_PRIVATE threads: the engine is tuned for a core pair. */
#define WG_PRIVATE 2
/* The largest block (V + M) of a large U that the L3 share cannot hold. */
#define WG_U_BLOCK_MAX ((size_t)64 << 20)
/* Alignment of U: a transparent huge page. */
#define WG_HUGE ((size_t)2 << 20)

#define WG_INLINE static inline __attribute__((always_inline))
#define WG_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prfchw")))
#define WG_AVX2 __attribute__((target("avx2,fma")))

typedef float wg_v16 __attribute__((vector_size(64)));
/* The same, for addresses that need only float alignment (the caller's tensors). */
typedef float wg_v16u __attribute__((vector_size(64), aligned(4)));
typedef int wg_i16 __attribute__((vector_size(64)));
/* Half of one, for the AVX2 build's kernel (wg_kernel8) and transforms. */
typedef float wg_v8 __attribute__((vector_size(32)));
typedef float wg_v8u __attribute__((vector_size(32), aligned(4)));
typedef int wg_i8 __attribute__((vector_size(32)));

#include "winograd_amx.h"
#include "winograd_bf16.h" /* after WG_ROWS and the vector types it uses */
#include "winograd_fp16.h"

#if BN_HAVE_AMX && !WG_HAVE_BF16
#error "the AMX products need the BF16 engine around them (winograd_amx.h)"
#endif

/* The arithmetic of the products, a constant in each build of the template
 * (wg_work_*): FP32; BF16 (winograd_bf16.h); FP16 with vfmadd231ph, or the
 * same sums in software (winograd_fp16.h). WG_AMX: BF16's values and
 * transforms, the products on AMX tiles (winograd_amx.h); only the geometry
 * and the choice of products function tell it apart, the template runs it
 * as WG_BF16. */
enum { WG_F32, WG_BF16, WG_F16, WG_AMX };

/* ------------------------------------------------------------------------ */
/* Transform matrices                                                        */
/* ------------------------------------------------------------------------ */

/* G (8 x 3): the kernel transform, rows in the order of the points
 * 0, 1, -1, 2, -2, 1/2, -1/2, infinity. B^T and A^T are unrolled by hand in
 * wg_bt8() and wg_at8() below; the three are derived together (Toom-Cook with
 * those points) and only valid together. */
static const double wg_G[WG_N][3] = {
    {1.0, 0.0, 0.0},
    {-2.0 / 9, -2.0 / 9, -2.0 / 9},
    {-2.0 / 9, 2.0 / 9, -2.0 / 9},
    {1.0 / 90, 1.0 / 45, 2.0 / 45},
    {1.0 / 90, -1.0 / 45, 2.0 / 45},
    {32.0 / 45, 16.0 / 45, 8.0 / 45},
    {32.0 / 45, -16.0 / 45, 8.0 / 45},
    {0.0, 0.0, 1.0},
};

/* a b + c, rounded once (a fused multiply-add), for the transforms' builds
 * on CPUs with FMA; the portable build rounds twice (WG_MUL_ADD): CPUs
 * without FMA have no other way. Written out rather than left to the
 * compiler, which fuses a multiply and an add where it sees fit (GCC -O3's
 * choices differed between the AVX2 and AVX-512 builds, and between a
 * function's loops, by the last bit): the same fused operations in both
 * builds make their bytes the same (tests/test_winograd_spec.c).
 * Optimizing GCC: its builtins, which inline like operators, so the
 * template inlines into each build as it did with a * b + c. Elsewhere
 * (-O0, where another build's dead branch is compiled too; clang, which
 * checks a builtin's target where it is written): functions of each
 * build's target, plain static inline, so that such a branch stays a call
 * instead of an error. */
#if defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
/* (-Wpsabi: a builtin returns a vector in a function without that target's
 * ABI; these are always inlined into a function that has it, no ABI.) */
#pragma GCC diagnostic ignored "-Wpsabi"
#define wg_fma_avx512(a, b, c) __builtin_ia32_vfmaddps512_mask(a, b, c, (unsigned short)-1, 4)
#define wg_fma_avx2(a, b, c) __builtin_ia32_vfmaddps256(a, b, c)
#define WG_FMA_ATTR(attr) WG_INLINE
/* *c = a b + *c: the kernels' form (pointers: no vector crosses a call in
 * the functions of other targets) */
#define wg_fma_into_avx512(c, a, b) (*(c) = wg_fma_avx512(*(a), *(b), *(c)))
#define wg_fma_into_avx2(c, a, b) (*(c) = wg_fma_avx2(*(a), *(b), *(c)))
#else
static inline WG_AVX512 wg_v16 wg_fma_avx512(wg_v16 a, wg_v16 b, wg_v16 c) {
    return (wg_v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
static inline WG_AVX2 wg_v8 wg_fma_avx2(wg_v8 a, wg_v8 b, wg_v8 c) {
    return (wg_v8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
static inline WG_AVX512 void wg_fma_into_avx512(wg_v16 *c, const wg_v16 *a, const wg_v16 *b) {
    *c = wg_fma_avx512(*a, *b, *c);
}
static inline WG_AVX2 void wg_fma_into_avx2(wg_v8 *c, const wg_v8 *a, const wg_v8 *b) {
    *c = wg_fma_avx2(*a, *b, *c);
}
#define WG_FMA_ATTR(attr) static inline attr
#endif
#define WG_MUL_ADD(a, b, c) ((a) * (b) + (c))
#define WG_SPLAT16(s) ((wg_v16){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s})

/* v = B^T d for 8 vectors, B^T =
 *   [ 1   0  -21/4   0    21/4   0    -1  0 ]
 *   [ 0   1    1   -17/4 -17/4   1     1  0 ]
 *   [ 0  -1    1    17/4 -17/4  -1     1  0 ]
 *   [ 0  1/2  1/4  -5/2  -5/4    2     1  0 ]
 *   [ 0 -1/2  1/4   5/2  -5/4   -2     1  0 ]
 *   [ 0   2    4   -5/2   -5    1/2    1  0 ]
 *   [ 0  -2    4    5/2   -5   -1/2    1  0 ]
 *   [ 0  -1    0   21/4    0  -21/4    0  1 ]
 * computed as even/odd halves for each pair of points +-p. FMA(a, b, c) is
 * a b + c: one source for the builds, their vector types and their
 * multiply-adds (wg_fma_*, WG_MUL_ADD): wg_bt8_avx512 and wg_bt8_portable on
 * wg_v16, wg_bt8_avx2 on wg_v8 (the AVX2 build's transforms, wg_input_vec8).
 * Every product by a constant that is not a power of two is fused with the
 * sum it enters (the others are exact). tests/test_winograd_spec.c
 * computes the same operations one float at a time. */
#define WG_K(T, x) ((T){0} + (x)) /* a constant, in every lane */
#define WG_BT8(T, NAME, ATTR, FMA)                                                                 \
    WG_FMA_ATTR(ATTR) void NAME(const T d[8], T v[8]) {                                            \
        T e1 = FMA(WG_K(T, -4.25f), d[4], d[2] + d[6]);                                            \
        T o1 = FMA(WG_K(T, -4.25f), d[3], d[1] + d[5]);                                            \
        T e2 = FMA(WG_K(T, -1.25f), d[4], FMA(WG_K(T, 0.25f), d[2], d[6]));                        \
        T o2 = FMA(WG_K(T, 2.0f), d[5], FMA(WG_K(T, -2.5f), d[3], 0.5f * d[1]));                   \
        T e3 = FMA(WG_K(T, -5.0f), d[4], FMA(WG_K(T, 4.0f), d[2], d[6]));                          \
        T o3 = FMA(WG_K(T, 0.5f), d[5], FMA(WG_K(T, -2.5f), d[3], 2.0f * d[1]));                   \
        v[0] = FMA(WG_K(T, 5.25f), d[4] - d[2], d[0] - d[6]);                                      \
        v[1] = e1 + o1;                                                                            \
        v[2] = e1 - o1;                                                                            \
        v[3] = e2 + o2;                                                                            \
        v[4] = e2 - o2;                                                                            \
        v[5] = e3 + o3;                                                                            \
        v[6] = e3 - o3;                                                                            \
        v[7] = FMA(WG_K(T, 5.25f), d[3] - d[5], d[7] - d[1]);                                      \
    }
WG_BT8(wg_v16, wg_bt8_avx512, WG_AVX512, wg_fma_avx512)
WG_BT8(wg_v16, wg_bt8_portable, , WG_MUL_ADD)
WG_BT8(wg_v8, wg_bt8_avx2, WG_AVX2, wg_fma_avx2)
#undef WG_BT8

/* y = A^T m for 8 vectors -> 6, A^T =
 *   [ 1  1   1   1    1    1      1     0 ]
 *   [ 0  1  -1   2   -2   1/2   -1/2    0 ]
 *   [ 0  1   1   4    4   1/4    1/4    0 ]
 *   [ 0  1  -1   8   -8   1/8   -1/8    0 ]
 *   [ 0  1   1  16   16   1/16   1/16   0 ]
 *   [ 0  1  -1  32  -32   1/32  -1/32   1 ]
 * Its constants are powers of two, so fused or not, the same bytes; fused
 * for fewer instructions. */
#define WG_AT8(T, NAME, ATTR, FMA)                                                                 \
    WG_FMA_ATTR(ATTR) void NAME(const T m[8], T y[6]) {                                            \
        T s1 = m[1] + m[2], t1 = m[1] - m[2];                                                      \
        T s2 = m[3] + m[4], t2 = m[3] - m[4];                                                      \
        T s3 = m[5] + m[6], t3 = m[5] - m[6];                                                      \
        y[0] = m[0] + s1 + s2 + s3;                                                                \
        y[1] = FMA(WG_K(T, 0.5f), t3, FMA(WG_K(T, 2.0f), t2, t1));                                 \
        y[2] = FMA(WG_K(T, 0.25f), s3, FMA(WG_K(T, 4.0f), s2, s1));                                \
        y[3] = FMA(WG_K(T, 0.125f), t3, FMA(WG_K(T, 8.0f), t2, t1));                               \
        y[4] = FMA(WG_K(T, 0.0625f), s3, FMA(WG_K(T, 16.0f), s2, s1));                             \
        y[5] = FMA(WG_K(T, 0.03125f), t3, FMA(WG_K(T, 32.0f), t2, t1)) + m[7];                     \
    }
WG_AT8(wg_v16, wg_at8_avx512, WG_AVX512, wg_fma_avx512)
WG_AT8(wg_v16, wg_at8_portable, , WG_MUL_ADD)
WG_AT8(wg_v8, wg_at8_avx2, WG_AVX2, wg_fma_avx2)
#undef WG_AT8
#undef WG_K

/* The transforms on wg_v16 for a build (isa, a constant: the AVX-512 or the
 * portable one; the AVX2 build's run on wg_v8). */
WG_INLINE void wg_bt8(const int isa, const wg_v16 d[8], wg_v16 v[8]) {
    if (isa == BN_WINOGRAD_AVX512)
        wg_bt8_avx512(d, v);
    else
        wg_bt8_portable(d, v);
}
WG_INLINE void wg_at8(const int isa, const wg_v16 m[8], wg_v16 y[6]) {
    if (isa == BN_WINOGRAD_AVX512)
        wg_at8_avx512(m, y);
    else
        wg_at8_portable(m, y);
}

/* ------------------------------------------------------------------------ */
/* Layer geometry                                                            */
/* ------------------------------------------------------------------------ */

/* Everything forward and workspace must agree on, derived from (c, n, h, w).
 *
 * Tiles never mix images: each image is covered by its own tiles_y x tiles_x
 * tiles, from its top-left pixel, and a tile's 8x8 input patch holds that
 * image's pixels and zeros, nothing else. Why: the transforms mix all 64
 * pixels of a patch, and the contributions of pixels outside an output's 3x3
 * window cancel only in exact arithmetic, so a patch that reached into a
 * neighbouring image (as the shared canvas of earlier versions did) changed
 * the result's last bits with the neighbour. This way every value an image
 * gets is computed from its own pixels by the same operations in the same
 * order, whatever batch it is in, the batch size or the number of threads:
 * its vector is bitwise reproducible. (The canvas needed about 7% fewer
 * tiles at 224; docs/PERFORMANCE.md has the cost measured.)
 *
 * V is stored position by position, (64, tb, cinp): the matrix V[p] that the
 * kernel reads for position p is contiguous and row-major. M is stored tile
 * by tile, and within a tile as (coutp/16, 64, 16): the 64 positions of one
 * 16-channel vector, which the output transform reads together, are 4 KiB of
 * consecutive memory. (Writes to scattered lines cost little: stores do not
 * wait; loads from scattered lines do.) */
typedef struct {
    int cin, cout;
    int cinp, coutp;      /* cin rounded up to 16, cout to WG_COLS */
    int n, h, w;          /* the batch */
    int tiles_y, tiles_x; /* tiles down and across one image */
    size_t tpi;           /* tiles per image: tiles_y * tiles_x */
    size_t tiles;         /* n * tpi; tile t is tile t % tpi of image t / tpi */
    size_t tb;            /* tiles per block */
    size_t vstride;       /* elements between positions of V: tb * cinp + pad */
    size_t mtile;         /* floats per tile in M: 64 * coutp + pad */
    size_t vfloats;       /* the V block */
    size_t mfloats;       /* the M block */
    size_t ubytes;        /* the transformed kernel U */
    int private_blocks;   /* small U: each thread its own blocks, V and M (WG_PRIVATE sets) */
    int rule;             /* WG_RULE_*: which cache U and the block were sized for */
    size_t budget;        /* bytes of V + M per block the rule allows */
    size_t l2;            /* a core's L2: private blocks whose U is larger stream V */
    size_t stream_bytes;  /* outputs larger than this go past the caches */
    int bf16;             /* V and U in bfloat16 (winograd_bf16.h): cinp a multiple of 32,
                           * vstride in 2-byte elements, ubytes of the BF16 U */
    int amx;              /* BF16's V and U, products on AMX tiles: tb a multiple of
                           * WG_AMX_ROWS (winograd_amx.h) */
    int fp16;             /* V and U in binary16 (winograd_fp16.h): cinp a multiple of 32,
                           * V's layout FP32's, then the chunks' scales; ubytes of the FP16 U */
    size_t nch;           /* FP16: chunks of WG_F16_K channels per tile (scales per tile) */
} wg_geom;

static int wg_round_up(int x, int m) {
    return (x + m - 1) / m * m;
}

/* The three sizes of U the block rules tell apart. */
enum { WG_RULE_L2, WG_RULE_L3, WG_RULE_LARGE };

/* The blocks of a layer from the data caches c (bn_cpu_caches()). With S one
 * CPU's share of the last-level cache (l3 / l3_cpus) and P = min(l3, 2 S) the
 * share of the core pair the engine is tuned for (WG_PRIVATE threads):
 *   - U <= 4 x L2 (block1-2 here): private blocks whose V + M fill the L2.
 *     Each thread re-reads all of U from the L3 for every block of its own;
 *     that costs at most 4x the block's own traffic, which the products hide;
 *     block3 (U 8x the L2) was slower so (docs/PERFORMANCE.md). When the L2
 *     holds U beside a block (block1_conv2 on a 2 MiB L2), V + M fill what U
 *     leaves, and U stays in the L2.
 *   - U + S/2 <= P (block3 here: U stays in the L3 from one block to the
 *     next): shared blocks of S/2, half a CPU's share, so a block and U
 *     together stay in the pair's L3.
 *   - larger U (block4-5, streamed from memory once per block): blocks of P,
 *     so that U is read once or twice per batch; V is past the caches
 *     anyway, and larger blocks measured no better.
 * On the host the engine was tuned on (L2 1 MiB, L3 32 MiB for 2 CPUs) these
 * give the constants it had: 4 MiB, 1 MiB, 8 MiB, 24 MiB and 32 MiB. Outputs
 * larger than P are written past the caches: the next layer could not find
 * them there anyway. Every rule only groups tiles: the sums are the same. */
static void wg_geometry(wg_geom *g, int cin, int cout, int n, int h, int w, int pool, int prec,
                        const bn_cpu_cache_sizes *c) {
    const int bf16 = prec == WG_BF16 || prec == WG_AMX, fp16 = prec == WG_F16;
    /* the kernel's rows: blocks are made of whole groups of them */
    const size_t rowq = prec == WG_AMX ? WG_AMX_ROWS : WG_ROWS;
    g->cin = cin;
    g->cout = cout;
    g->bf16 = bf16;
    g->amx = prec == WG_AMX;
    g->fp16 = fp16;
    /* BF16: pairs of 16-channel vectors become one 64-byte row of V; FP16:
     * pairs are a chunk, scaled together */
    g->cinp = wg_round_up(cin, bf16 || fp16 ? 32 : 16);
    g->nch = fp16 ? (size_t)g->cinp / WG_F16_K : 0;
    g->coutp = wg_round_up(cout, WG_COLS);
    g->n = n;
    g->h = h;
    g->w = w;
    (void)pool; /* tiles are 6x6 and start at even pixels: pooled pairs never straddle two */
    g->tiles_y = (h + WG_M - 1) / WG_M;
    g->tiles_x = (w + WG_M - 1) / WG_M;
    g->tpi = (size_t)g->tiles_y * g->tiles_x;
    g->tiles = (size_t)n * g->tpi;
    const size_t share = c->l3 / (size_t)(c->l3_cpus > 0 ? c->l3_cpus : 1);
    const size_t pair = 2 * share < c->l3 ? 2 * share : c->l3;
    g->l2 = c->l2;
    g->stream_bytes = pair;
    /* Tiles per block: the rule's budget over the bytes of V and M per tile
     * (FP32 sizes in BF16 too: its blocks are as many tiles), a multiple of
     * the kernel's rows, at most the batch. */
    size_t per_tile = (size_t)WG_P * (g->cinp + g->coutp) * sizeof(float);

    size_t ubytes = g->ubytes = (size_t)WG_P * g->cinp * g->coutp * sizeof(float);
    g->rule = ubytes <= 4 * c->l2          ? WG_RULE_L2
              : ubytes + share / 2 <= pair ? WG_RULE_L3
                                           : WG_RULE_LARGE;
    size_t budget = g->budget = g->rule == WG_RULE_L2   ? c->l2
                                : g->rule == WG_RULE_L3 ? share / 2
                                                        : pair;
    /* At least 2 kernel rows; 4 when U is not re-read from a cache (large U,
     * streamed once per block; shared blocks). */
    size_t min_tb = (g->rule == WG_RULE_L2 ? 2 : 4) * WG_ROWS;
    /* When the L2 holds U (in its own precision) beside a block of at least
     * min_tb tiles, U stays there: V + M get what U leaves, and each
     * block's products read U from the L2, not the L3. Intel host (L2
     * 2 MiB), block1_conv2 (U 1 MiB): blocks of 28 tiles instead of 70,
     * the layer 3.4-3.6 ms per image against 4.3-4.6; FP16 (U 0.5 MiB, 42
     * tiles) 2.7-3.1 against 3.2-3.6 (docs/PERFORMANCE.md). */
    const size_t uheld = bf16 || fp16 ? ubytes / 2 : ubytes;
    const int u_in_l2 = g->rule == WG_RULE_L2 && uheld + min_tb * per_tile <= c->l2;
    if (u_in_l2)
        budget = g->budget = c->l2 - uheld;
    size_t tb = budget / per_tile;
    /* Large U and a share of the L3 too small for even the smallest block
     * (an Intel host: 2 MiB a core, U of block4 67 MB): blocks of 56 tiles
     * would read U from memory once per 14 MB of V and M, 4 times per layer
     * and batch. Blocks as large as U make its traffic at most theirs: on
     * that host FP16 3% faster, FP32 the same (docs/PERFORMANCE.md). At most
     * WG_U_BLOCK_MAX: layers wider than VGG16's 512 channels must not double
     * their memory. */
    if (g->rule == WG_RULE_LARGE && tb < min_tb) {
        budget = g->budget = ubytes < WG_U_BLOCK_MAX ? ubytes : WG_U_BLOCK_MAX;
        tb = budget / per_tile;
    }
    if (tb < min_tb)
        tb = min_tb;
#ifdef WG_PROFILE
    /* Experiments (docs/PERFORMANCE.md, "Block sizes on the Zen 2 host"):
     * BN_WG_FLOOR=F, blocks of the large rule at least F times U (at most
     * WG_U_BLOCK_MAX); BN_WG_TB=N, N tiles per block everywhere. */
    const char *fenv = getenv("BN_WG_FLOOR");
    if (fenv && g->rule == WG_RULE_LARGE) {
        size_t f = (size_t)(atof(fenv) * (double)ubytes);
        f = f < WG_U_BLOCK_MAX ? f : WG_U_BLOCK_MAX;
        if (f > budget) {
            budget = g->budget = f;
            tb = budget / per_tile;
        }
    }
    const char *env = getenv("BN_WG_TB");
    if (env && atoi(env) > 0)
        tb = (size_t)atoi(env);
#endif
    /* Equal blocks (one if the batch is at most 1.5 blocks), in whole kernel
     * rows; with U in the L2, none larger than the budget allows (rounding
     * up to whole rows would push U out: 42 tiles instead of 28). */
    if (u_in_l2 && tb > rowq)
        tb = tb / rowq * rowq;
    size_t nblocks = u_in_l2 ? (g->tiles + tb - 1) / tb : (g->tiles + tb / 2) / tb;
    nblocks = nblocks < 1 ? 1 : nblocks;
    tb = (g->tiles + nblocks - 1) / nblocks;
    tb = (tb + rowq - 1) / rowq * rowq;
    /* (AMX: whole groups even past the batch's tiles, which its kernel reads
     * and writes) */
    if (tb > g->tiles)
        tb = prec == WG_AMX ? (g->tiles + rowq - 1) / rowq * rowq : g->tiles;
    g->tb = tb;
    /* The pads (one cache line) keep lines that are used together from all
     * falling into the same cache set (sizes that are multiples of 4 KiB). */
    g->vstride = tb * g->cinp + (bf16 || fp16 ? 32 : 16);
    g->mtile = (size_t)WG_P * g->coutp + 16;
    g->vfloats = bf16 || fp16 ? WG_P * g->vstride / 2 : WG_P * g->vstride;
    if (fp16) /* the scales, after V */
        g->vfloats += (tb * g->nch + 15) / 16 * 16;
    if (bf16 || fp16)
        g->ubytes /= 2;
    g->mfloats = tb * g->mtile;
    /* When U is small enough to be re-read per block from the L3 (the first
     * rule), threads need not share blocks: each takes whole blocks with its
     * own V and M, no barrier, no V lines crossing cores. Only with enough
     * blocks to keep both threads busy. */
    g->private_blocks = g->rule == WG_RULE_L2 && (g->tiles + tb - 1) / tb >= 2 * WG_PRIVATE;
}

/* Whether the rows [y, y + ny) and columns [x, x + nx) of an image all lie
 * inside it (h x w). */
static inline int wg_inside(const wg_geom *g, int y, int ny, int x, int nx) {
    return y >= 0 && x >= 0 && y + ny <= g->h && x + nx <= g->w;
}

/* Whether the input transform takes the 8x8 patch at (y, x) (top-left,
 * in input pixels) on its fast path: all inside the image, whole vectors of
 * 16 channels. Else (edge tiles, or cin not a multiple of 16) it loads pixel
 * by pixel, zeros off the image. */
static inline int wg_patch_fast(const wg_geom *g, int y, int x) {
    return wg_inside(g, y, WG_N, x, WG_N) && g->cin % 16 == 0;
}

/* Whether the output (pooled or not) is written with non-temporal stores:
 * when larger than the pair's L3 (g->stream_bytes), and only whole vectors. */
static int wg_stream_out(const wg_geom *g, int pool) {
    size_t px = pool ? (size_t)(g->h / 2) * (g->w / 2) : (size_t)g->h * g->w;
    size_t out_bytes = (size_t)g->n * px * g->cout * sizeof(float);
    return out_bytes > g->stream_bytes && g->cout % 16 == 0;
}

/* Whether threads take private blocks: the geometry allows them and there
 * are at most WG_PRIVATE threads (the workspace holds that many V and M). */
static int wg_private(const wg_geom *g, int threads) {
    return g->private_blocks && threads <= WG_PRIVATE;
}

/* Bytes of V and M the workspace holds for geometry g: one set per thread
 * when blocks may be private. */
static size_t wg_workspace_bytes(const wg_geom *g) {
    return (g->vfloats + g->mfloats) * sizeof(float) * (g->private_blocks ? WG_PRIVATE : 1);
}

/* Whether V goes past the caches (non-temporal stores, prefetched back by
 * the products a position ahead): when it cannot stay in the core's L2 until
 * the products read it. In shared blocks (block3-5, MBs per block), and in
 * private blocks whose U (re-read for every block) is larger than the L2
 * (block2 here). Its stores then do not wait for 64 line reads per tile and
 * channel vector. Measured: block3-5 10% faster, block2_conv2 13%,
 * block2_conv1 3%; block1_conv2 (U 1 MB, V stays in L2) 3% slower, so not
 * there. */
static int wg_vstream(const wg_geom *g, int private_blocks) {
    return !private_blocks || g->ubytes > g->l2;
}

/* ------------------------------------------------------------------------ */
/* The three steps of one block                                              */
/* ------------------------------------------------------------------------ */

/* What every thread of a forward call shares. */
typedef struct {
    wg_geom g;
    const float *in;
    float *out;
    const float *u;     /* FP32 U, or NULL */
    const uint16_t *ub; /* BF16 U (g.bf16) or FP16 U (g.fp16), or NULL */
    float uscale;       /* FP16: U's scale undone (winograd_fp16.h) */
    int f16emu;         /* FP16: the products in software (wg_f16_chunk_emu) */
    const float *bias;
    int pool;           /* write maxpool2x2 of the output (h/2, w/2) instead */
    int private_blocks; /* g.private_blocks and at most WG_PRIVATE threads */
    int stream;         /* write the output with non-temporal stores (wg_stream) */
    int vstream;        /* V past the caches (non-temporal stores), prefetched back */
    int position_tasks; /* shared blocks: a products task is a whole position */
    float *v;           /* the V block */
    float *m;           /* the M block */
    /* Shared blocks: the tasks of steps 1, 2 and 3, numbered across blocks. */
    bn_pool_queue q[3];
    bn_pool_queue blocks; /* private blocks: which block is next */
} wg_job;

/* Load 16 channels [c, c + 16) of one pixel, zero past cin (when cin is not
 * a multiple of 16: VGG16's first layer, cin = 3). */
WG_INLINE void wg_load_px(wg_v16 *v, const float *p, int c, int cin) {
    if (c + 16 <= cin) {
        *v = *(const wg_v16u *)(p + c);
        return;
    }
    *v = (wg_v16){0};
    for (int i = 0; c + i < cin; i++)
        (*v)[i] = p[c + i];
}

/* Store 16 floats at p (64-byte aligned) past the caches: for outputs far
 * larger than the last-level cache (block1-2 at batch 8), a normal store
 * first reads each line from memory, then writes it back; and for V in the
 * blocks of block2-5 (j->vstream), where 64 stores per tile and
 * channel vector to 64 lines far apart wait on the lines' reads. One zmm
 * store (the AVX-512 build; the AVX2 build's transforms use wg_stream2);
 * the instructions are text to the compiler, and the portable build never
 * gets here (j->stream and j->vstream are 0). Needs wg_stream_fence() before
 * others read. */
WG_INLINE void wg_stream(float *p, const wg_v16 *v) {
    __asm__("vmovaps %1, %%zmm15\n\tvmovntps %%zmm15, %0" : "=m"(*(wg_v16 *)p) : "m"(*v) : "xmm15");
}

/* The same for a vector held as two halves of 8 floats (the AVX2 build),
 * both halves of the line written together, so that the write-combining
 * buffer that takes the first half is full when it leaves (halves written
 * far apart in time would leave it half full: a partial write to memory). */
WG_INLINE void wg_stream2(float *p, const wg_v8 *lo, const wg_v8 *hi) {
    __asm__("vmovaps %2, %%ymm15\n\tvmovntps %%ymm15, %0\n\t"
            "vmovaps %3, %%ymm15\n\tvmovntps %%ymm15, %1"
            : "=m"(*(wg_v8 *)p), "=m"(*(wg_v8 *)(p + 8))
            : "m"(*lo), "m"(*hi)
            : "xmm15");
}

/* Store a vector held as two halves at p (64-byte aligned when streamed):
 * past the caches or not. */
WG_INLINE void wg_store2(float *p, const wg_v8 *lo, const wg_v8 *hi, int stream) {
    if (stream) {
        wg_stream2(p, lo, hi);
        return;
    }
    *(wg_v8u *)p = *lo;
    *(wg_v8u *)(p + 8) = *hi;
}

WG_INLINE void wg_stream_fence(void) {
    __asm__ volatile("sfence" ::: "memory");
}

/* The same for 8 channels [c, c + 8) (the AVX2 build). One vector load, not
 * eight: the tiles on the image's edge take this path, 36% of them at 56
 * pixels and 89% at 14, and loading them a float at a time made their input
 * transform twice as slow as the others' (bench/bench_transforms). */
WG_INLINE void wg_load_px8(wg_v8 *v, const float *p, int c, int cin) {
    if (c + 8 <= cin) {
        *v = *(const wg_v8u *)(p + c);
        return;
    }
    *v = (wg_v8){0};
    for (int i = 0; c + i < cin; i++)
        (*v)[i] = p[c + i];
}

/* The AVX2 build's FP32 input transform of channels [c, c + 16) of one tile
 * (wg_input_tile's arguments; base NULL off the fast path, ry and cx then
 * say which rows and columns are in the image): two passes of 8 channels.
 * A tile of wg_v16 is 128 ymm and every pass of wg_bt8 spills; 8 channels
 * make it 64, each pass's 8 inputs and outputs in registers (GCC -O3: 154
 * instructions a pass against 559 for the pair). Every lane sees the same
 * operations as in the AVX-512 build's wg_v16 (wg_bt8_avx2 and
 * wg_bt8_avx512 are one source). Half 0's results wait in lo, so that each
 * line of V is written whole (wg_store2). */
WG_INLINE void wg_input_vec8(const wg_job *j, const float *image, const float *base, const int *ry,
                             const int *cx, int y0, int x0, int c, float *v) {
    const wg_geom *g = &j->g;
    const int w = g->w, cin = g->cin;
    const size_t vs = g->vstride;
    wg_v8 lo[WG_P];
    for (int half = 0; half < 2; half++) {
        const int ch = c + 8 * half;
        wg_v8 t[WG_N][WG_N];
        for (int a = 0; a < WG_N; a++) {
            wg_v8 d[WG_N];
            if (base) {
                const float *row = base + (size_t)a * w * cin + ch;
#pragma GCC unroll 8
                for (int b = 0; b < WG_N; b++)
                    d[b] = *(const wg_v8u *)(row + (size_t)b * cin);
            } else {
                /* Not unrolled: unrolled, this loop let GCC fuse the
                 * transform's multiply-adds otherwise than on the fast path,
                 * and edge tiles rounded differently (test_translation). */
                for (int b = 0; b < WG_N; b++) {
                    if (!ry[a] || !cx[b])
                        d[b] = (wg_v8){0};
                    else
                        wg_load_px8(&d[b], image + ((size_t)(y0 + a) * w + x0 + b) * cin, ch, cin);
                }
            }
            wg_bt8_avx2(d, t[a]);
        }
        for (int b = 0; b < WG_N; b++) {
            wg_v8 d[WG_N], r[WG_N];
#pragma GCC unroll 8
            for (int a = 0; a < WG_N; a++)
                d[a] = t[a][b];
            wg_bt8_avx2(d, r);
#pragma GCC unroll 8
            for (int a = 0; a < WG_N; a++) {
                const int q = a * WG_N + b;
                if (half == 0)
                    lo[q] = r[a];
                else
                    wg_store2(v + (size_t)q * vs + c, &lo[q], &r[a], j->vstream);
            }
        }
    }
}

/* Input transform of one tile: the 8x8 patch of image img at (y0, x0)
 * (top-left; zeros off the image) into the tile's row of V: v + p * vstride,
 * cinp channels, for p = 0..63. next: the pixel at the top-left of the next
 * tile's patch when that patch lies inside its image (else NULL), from
 * column nfrom on (2 when the next tile is this one's right neighbour: the
 * first two columns are shared): its pixels are prefetched, one vector at a
 * time as this tile's are used, so that the next tile does not wait.
 * FP16: sc, the tile's row of chunk scales, is written too. isa (a
 * constant): the build (bn_winograd_isa); the AVX2 one's FP32 transforms run
 * on 8-float vectors (wg_input_vec8). */
WG_INLINE void wg_input_tile(const wg_job *j, size_t img, int y0, int x0, void *vrow, float *sc,
                             const float *next, int nfrom, const int prec, const int isa) {
    const int bf16 = prec == WG_BF16, fp16 = prec == WG_F16;
    float *v = vrow;     /* FP32 V */
    uint16_t *vb = vrow; /* BF16 and FP16 V */
    /* BF16: channels c-16..c-1 until c..c+15 join them; FP16: both vectors of
     * a chunk until its largest |V| is known */
    wg_v16 stage[bf16 ? WG_P : fp16 ? 2 * WG_P : 1];
    wg_v16 vmax = {0};
    const wg_geom *g = &j->g;
    const int h = g->h, w = g->w, cin = g->cin, cinp = g->cinp;
    const size_t vs = g->vstride;
    const float *image = j->in + img * (size_t)h * w * cin;
    const int inside = wg_patch_fast(g, y0, x0);
    const float *base = inside ? image + ((size_t)y0 * w + x0) * cin : NULL;
    /* Off the fast path: whether each row and column of the patch is in the
     * image. Zeroed so that the compiler (at -O3) need not prove them set. */
    int ry[WG_N] = {0}, cx[WG_N] = {0};
    if (!inside)
        for (int a = 0; a < WG_N; a++) {
            ry[a] = y0 + a >= 0 && y0 + a < h;
            cx[a] = x0 + a >= 0 && x0 + a < w;
        }
    wg_v16 t[WG_N][WG_N];
    for (int c = 0; c < cinp; c += 16) {
        if (next && c < cin)
            for (int a = 0; a < WG_N; a++)
                for (int b = nfrom; b < WG_N; b++)
                    __builtin_prefetch(next + ((size_t)a * w + b) * cin + c, 0, 2);
        /* Ask for the lines the next vector (or the next tile's first) will
         * write while this one computes: V is in L2, not L1, and stores that
         * miss stall the core. (With j->vstream, V's stores need no lines.) */
        const float *vnext = v + (c + 16 < cinp ? c + 16 : cinp);
        if (!j->vstream && prec == WG_F32)
            for (int p = 0; p < WG_P; p += 8)
#pragma GCC unroll 8
                for (int q = p; q < p + 8; q++)
                    __builtin_prefetch(vnext + (size_t)q * vs, 1, 3);
        /* FP16: the chunk's 64 lines, written after its second vector */
        if (!j->vstream && fp16 && (c & 16) == 0)
            for (int p = 0; p < WG_P; p += 8)
#pragma GCC unroll 8
                for (int q = p; q < p + 8; q++)
                    __builtin_prefetch(vb + (size_t)q * vs + c, 1, 3);
        /* BF16, a vector of padding channels only (cin = 3: channels 16-31,
         * half the transforms of VGG16's first layer): its V is zero (the
         * transform of zeros is +0, the same bytes), stored beside the
         * staged vector without transforming zeros. Always an odd vector:
         * cinp is cin rounded up to 32, so even vectors start below cin. */
        if (bf16 && c >= cin) {
            const wg_v16 zero = {0};
            for (int q = 0; q < WG_P; q++)
                wg_bf16_store(vb + (size_t)q * vs + c - 16, &stage[q], &zero, j->vstream);
            continue;
        }
        if (isa == BN_WINOGRAD_AVX2 && prec == WG_F32) {
            wg_input_vec8(j, image, base, ry, cx, y0, x0, c, v);
            continue;
        }
        for (int a = 0; a < WG_N; a++) {
            wg_v16 d[WG_N];
            if (inside) {
                const float *row = base + (size_t)a * w * cin + c;
#pragma GCC unroll 8
                for (int b = 0; b < WG_N; b++)
                    d[b] = *(const wg_v16u *)(row + (size_t)b * cin);
            } else {
#pragma GCC unroll 8
                for (int b = 0; b < WG_N; b++) {
                    if (!ry[a] || !cx[b])
                        d[b] = (wg_v16){0};
                    else
                        wg_load_px(&d[b], image + ((size_t)(y0 + a) * w + x0 + b) * cin, c, cin);
                }
            }
            wg_bt8(isa, d, t[a]);
        }
        for (int b = 0; b < WG_N; b++) {
            wg_v16 d[WG_N], r[WG_N];
#pragma GCC unroll 8
            for (int a = 0; a < WG_N; a++)
                d[a] = t[a][b];
            wg_bt8(isa, d, r);
            if (fp16) {
#pragma GCC unroll 8
                for (int a = 0; a < WG_N; a++) {
                    stage[(c & 16 ? WG_P : 0) + a * WG_N + b] = r[a];
                    wg_f16_absmax(&vmax, &r[a]);
                }
            } else if (bf16) {
                if ((c & 16) == 0) {
#pragma GCC unroll 8
                    for (int a = 0; a < WG_N; a++)
                        stage[a * WG_N + b] = r[a];
                } else {
#pragma GCC unroll 8
                    for (int a = 0; a < WG_N; a++)
                        wg_bf16_store(vb + (size_t)(a * WG_N + b) * vs + c - 16,
                                      &stage[a * WG_N + b], &r[a], j->vstream);
                }
            } else if (j->vstream) {
#pragma GCC unroll 8
                for (int a = 0; a < WG_N; a++)
                    wg_stream(v + (size_t)(a * WG_N + b) * vs + c, &r[a]);
            } else {
#pragma GCC unroll 8
                for (int a = 0; a < WG_N; a++)
                    *(wg_v16 *)(v + (size_t)(a * WG_N + b) * vs + c) = r[a];
            }
        }
        /* FP16: the chunk's two vectors, scaled by its power of two. */
        if (fp16 && (c & 16)) {
            float s = wg_f16_scale_of(wg_f16_hmax(&vmax));
            sc[c / WG_F16_K] = j->uscale / s;
            vmax = (wg_v16){0};
            for (int q = 0; q < WG_P; q++)
                wg_f16_store(vb + (size_t)q * vs + c - 16, &stage[q], &stage[WG_P + q], s,
                             j->vstream);
        }
    }
}

/* Elementwise max of two vectors (no ?: on vectors in C). */
WG_INLINE void wg_max(wg_v16 *r, const wg_v16 *a, const wg_v16 *b) {
    wg_i16 gt = *a > *b;
    *r = (wg_v16)(((wg_i16)*a & gt) | ((wg_i16)*b & ~gt));
}

/* wg_max and ReLU on halves. */
WG_INLINE void wg_max8(wg_v8 *r, const wg_v8 *a, const wg_v8 *b) {
    wg_i8 gt = *a > *b;
    *r = (wg_v8)(((wg_i8)*a & gt) | ((wg_i8)*b & ~gt));
}

/* The AVX2 build's output transform of channels [c, c + 16) of one tile
 * (wg_output_tile's geometry: base NULL off the fast path), in two passes of
 * 8 channels, as wg_input_vec8 and for the same reasons; half 0's outputs
 * wait in lo so that each output line is written whole. The same steps as
 * wg_output_tile's loop on wg_v16, written out again rather than shared
 * through a macro: a shared body changed how GCC unrolled the AVX-512
 * build's, which a host without AVX-512 cannot time. (Its sums are the same
 * either way: the multiply-adds are wg_at8's, written out.) */
WG_INLINE void wg_output_vec8(const wg_job *j, const float *mc, int c, float *image, float *base,
                              const int *ry, const int *cx, int y0, int x0) {
    const wg_geom *g = &j->g;
    const int pool = j->pool, cout = g->cout;
    const int step = pool ? 2 : 1, rows = WG_M / step;
    const size_t ow = (size_t)g->w / step;
    wg_v8 lo[WG_M][WG_M];
    for (int half = 0; half < 2; half++) {
        const int ch = c + 8 * half;
        wg_v8 t[WG_N][WG_M];
        for (int a = 0; a < WG_N; a++) {
            wg_v8 r[WG_N];
#pragma GCC unroll 8
            for (int b = 0; b < WG_N; b++)
                r[b] = *(const wg_v8 *)(mc + (a * WG_N + b) * 16 + 8 * half);
            wg_at8_avx2(r, t[a]);
        }
        wg_v8 bias = {0};
        if (ch + 8 <= cout)
            bias = *(const wg_v8u *)(j->bias + ch);
        else
            for (int i = 0; ch + i < cout; i++)
                bias[i] = j->bias[ch + i];
        for (int b = 0; b < WG_M; b += step) {
            wg_v8 d[WG_N], y[WG_M];
#pragma GCC unroll 8
            for (int a = 0; a < WG_N; a++)
                d[a] = t[a][b];
            wg_at8_avx2(d, y);
            if (pool) {
                wg_v8 y1[WG_M];
#pragma GCC unroll 8
                for (int a = 0; a < WG_N; a++)
                    d[a] = t[a][b + 1];
                wg_at8_avx2(d, y1);
#pragma GCC unroll 8
                for (int a = 0; a < WG_M; a++)
                    wg_max8(&y[a], &y[a], &y1[a]);
#pragma GCC unroll 4
                for (int a = 0; a < WG_M / 2; a++)
                    wg_max8(&y[a], &y[2 * a], &y[2 * a + 1]);
            }
#pragma GCC unroll 8
            for (int a = 0; a < rows; a++) {
                wg_v8 o = y[a] + bias;
                y[a] = (wg_v8)((wg_i8)o & (o > 0.0f)); /* ReLU */
            }
            const int bo = b / step;
            if (base) {
#pragma GCC unroll 8
                for (int a = 0; a < rows; a++) {
                    if (half == 0)
                        lo[a][bo] = y[a];
                    else
                        wg_store2(base + ((size_t)a * ow + bo) * cout + c, &lo[a][bo], &y[a],
                                  j->stream);
                }
            } else if (cx[bo]) {
                for (int a = 0; a < rows; a++) {
                    if (!ry[a])
                        continue;
                    float *px = image + ((size_t)(y0 / step + a) * ow + x0 / step + bo) * cout + ch;
                    for (int i = 0; i < 8 && ch + i < cout; i++)
                        px[i] = y[a][i];
                }
            }
        }
    }
}

/* Output transform of one tile for output channels [c0, c1) (multiples of 16;
 * c1 may pass cout): m is the tile's (coutp/16, 64, 16) block of M. The 6x6
 * outputs at (y0, x0) of image img get bias and ReLU and go to j->out
 * (n, h, w, cout), those off the image dropped; or, with j->pool,
 * their 2x2 maxima go to j->out (n, h/2, w/2, cout). Pooling commutes with
 * + bias and ReLU, which are applied after it. isa (a constant): the build;
 * the AVX2 one's runs on 8-float vectors (wg_output_vec8). */
WG_INLINE void wg_output_tile(const wg_job *j, const float *m, size_t img, int y0, int x0, int c0,
                              int c1, const int isa) {
    const wg_geom *g = &j->g;
    const int pool = j->pool, cout = g->cout;
    const int step = pool ? 2 : 1, rows = WG_M / step;
    const size_t ow = (size_t)g->w / step, out_img = (size_t)(g->h / step) * ow * cout;
    float *image = j->out + img * out_img;
    /* Rows y0 + step * a, columns x0 + step * b (a, b < rows): the first of
     * each pooled pair stands for the pair (y0, x0 and h, w are even). */
    const int full = wg_inside(g, y0, WG_M, x0, WG_M) && cout % 16 == 0;
    int ry[WG_M], cx[WG_M];
    for (int a = 0; a < rows; a++) {
        ry[a] = y0 + step * a < g->h;
        cx[a] = x0 + step * a < g->w;
    }
    float *base = full ? image + ((size_t)(y0 / step) * ow + x0 / step) * cout : NULL;
    wg_v16 t[WG_N][WG_M];
    for (int c = c0; c < c1; c += 16) {
        const float *mc = m + (size_t)c * WG_P;
        if (isa == BN_WINOGRAD_AVX2) {
            wg_output_vec8(j, mc, c, image, base, ry, cx, y0, x0);
            continue;
        }
        for (int a = 0; a < WG_N; a++) {
            wg_v16 r[WG_N];
#pragma GCC unroll 8
            for (int b = 0; b < WG_N; b++)
                r[b] = *(const wg_v16 *)(mc + (a * WG_N + b) * 16);
            wg_at8(isa, r, t[a]);
        }
        wg_v16 bias = {0};
        if (c + 16 <= cout)
            bias = *(const wg_v16u *)(j->bias + c);
        else
            for (int i = 0; c + i < cout; i++)
                bias[i] = j->bias[c + i];
        for (int b = 0; b < WG_M; b += step) {
            wg_v16 d[WG_N], y[WG_M];
#pragma GCC unroll 8
            for (int a = 0; a < WG_N; a++)
                d[a] = t[a][b];
            wg_at8(isa, d, y);
            if (pool) {
                wg_v16 y1[WG_M];
#pragma GCC unroll 8
                for (int a = 0; a < WG_N; a++)
                    d[a] = t[a][b + 1];
                wg_at8(isa, d, y1);
#pragma GCC unroll 8
                for (int a = 0; a < WG_M; a++)
                    wg_max(&y[a], &y[a], &y1[a]);
#pragma GCC unroll 4
                for (int a = 0; a < WG_M / 2; a++)
                    wg_max(&y[a], &y[2 * a], &y[2 * a + 1]);
            }
#pragma GCC unroll 8
            for (int a = 0; a < rows; a++) {
                wg_v16 o = y[a] + bias;
                y[a] = (wg_v16)((wg_i16)o & (o > 0.0f)); /* ReLU */
            }
            const int bo = b / step; /* output column within the tile */
            if (full) {
                float *px = base + (size_t)bo * cout + c;
#pragma GCC unroll 8
                for (int a = 0; a < rows; a++) {
                    if (j->stream)
                        wg_stream(px + (size_t)a * ow * cout, &y[a]);
                    else
                        *(wg_v16u *)(px + (size_t)a * ow * cout) = y[a];
                }
            } else if (cx[bo]) {
                for (int a = 0; a < rows; a++) {
                    if (!ry[a])
                        continue;
                    float *px = image + ((size_t)(y0 / step + a) * ow + x0 / step + bo) * cout + c;
                    for (int i = 0; i < 16 && c + i < cout; i++)
                        px[i] = y[a][i];
                }
            }
        }
    }
}

/* FP16, chunk q of the products for `rows` rows (a constant after
 * inlining): the chunk's binary16 sums over its n channels from zero
 * (wg_f16_chunk, or wg_f16_chunk_emu), widened into C times each row's chunk
 * scale (sc, nch per row): C = sums s for the first chunk, C + sums s after. */
WG_INLINE void wg_f16_chunk_into(const int rows, const uint16_t *a, size_t lda, const uint16_t *b,
                                 int n, float *c, size_t ldc, const float *sc, size_t nch, int q,
                                 int emu) {
    wg_v16 acc[WG_ROWS]; /* the chunk's FP16 sums, rows 0..rows-1 */
    if (emu) {
        /* its own array: acc's address never taken, so that GCC keeps the
         * native path's sums in registers */
        wg_v16 sums[WG_ROWS];
        wg_f16_chunk_emu(sums, rows, a, lda, b, n);
#pragma GCC unroll 16
        for (int r = 0; r < rows; r++)
            acc[r] = sums[r];
    } else
        wg_f16_chunk(acc, rows, a, lda, b, n);
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        wg_v16 lo, hi, *m0 = (wg_v16 *)(c + r * ldc), *m1 = (wg_v16 *)(c + r * ldc + WG_P * 16);
        const float s = sc[r * nch + q];
        wg_f16_widen(&acc[r], &lo, &hi);
        /* times a power of two: exact, so FMA or not, the same sums */
        if (q == 0) {
            *m0 = lo * s;
            *m1 = hi * s;
        } else {
            *m0 += lo * s;
            *m1 += hi * s;
        }
    }
}

/* The FP32 kernels' prefetches at step i: one line of what comes next per
 * two steps (pf's on even steps, pf2's on odd ones), a steady trickle that
 * the kernel's own loads never wait behind. */
WG_INLINE void wg_prefetch_step(int i, const char *pf, int npf, const char *pf2, int npf2) {
    if ((i & 1) == 0 && i / 2 < npf)
        __builtin_prefetch(pf + (size_t)i * 32, 0, 2);
    else if ((i & 1) && i / 2 < npf2)
        __builtin_prefetch(pf2 + (size_t)(i / 2) * 64, 0, 2);
}

/* C (rows, 32) = A (rows, k) B (k, 32) for one transform position.
 * A: row-major, leading dimension lda (rows of V[p]); k = cin, so that the
 * channels padded to 16 for the transforms (cin = 3 in VGG16's first layer)
 * cost no products. B: packed (k, 32).
 * C: rows in M, leading dimension ldc, the 32 columns as two vectors 1024
 * floats apart (M's tile layout). rows <= WG_ROWS and a constant after
 * inlining, so the 2 * rows accumulators live in registers. On the way it
 * prefetches npf cache lines from pf and npf2 from pf2 into L2.
 * prec (a constant after inlining): WG_BF16: A and B in bfloat16, k pairs
 * of channels, each step wg_bf16_step (winograd_bf16.h); WG_F16: A and B
 * binary16, k channels in chunks of WG_F16_K, each
 * chunk's FP16 sums widened into C times the row's chunk scale (sc, nch per
 * row; winograd_fp16.h). C is FP32 in every case. */
WG_INLINE void wg_kernel(const int isa, const int prec, int rows, int k, const void *av, size_t lda,
                         const void *bv, float *c, size_t ldc, const char *pf, int npf,
                         const char *pf2, int npf2, const float *sc, size_t nch, int emu) {
    const int bf16 = prec == WG_BF16;
    const float *a = av, *b = bv;
    wg_v16 c0[WG_ROWS], c1[WG_ROWS];
    if (prec == WG_F16) {
#pragma GCC unroll 16
        for (int r = 0; r < rows; r++) {
            __builtin_prefetch(c + r * ldc, 1, 3);
            __builtin_prefetch(c + r * ldc + WG_P * 16, 1, 3);
        }
        for (int i = 0, q = 0; i < k; q++) {
            const int end = i + WG_F16_K < k ? i + WG_F16_K : k;
            /* This chunk's share of the prefetches: one line per step, as
             * the FP32 and BF16 kernels ask for them. */
            for (int s = i; s < end && s < npf; s++)
                __builtin_prefetch(pf + (size_t)s * 64, 0, 2);
            for (int s = i; s < end && s < npf2; s++)
                __builtin_prefetch(pf2 + (size_t)s * 64, 0, 2);
            wg_f16_chunk_into(rows, (const uint16_t *)av + i, lda,
                              (const uint16_t *)bv + (size_t)i * 32, end - i, c, ldc, sc, nch, q,
                              emu);
            i = end;
        }
        return;
    }
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        c0[r] = c1[r] = (wg_v16){0};
        /* The lines written at the end, owned by then (M is rarely in cache). */
        __builtin_prefetch(c + r * ldc, 1, 3);
        __builtin_prefetch(c + r * ldc + WG_P * 16, 1, 3);
    }
    for (int i = 0; i < k; i++) {
        /* One line of what comes next per two steps: a steady trickle that
         * the kernel's own loads never wait behind. */
        if (bf16) {
            /* A BF16 step is two FP32 steps' work: one line of each. */
            if (i < npf)
                __builtin_prefetch(pf + (size_t)i * 64, 0, 2);
            if (i < npf2)
                __builtin_prefetch(pf2 + (size_t)i * 64, 0, 2);
            wg_bf16_step(c0, c1, rows, i, av, lda, bv);
            continue;
        }
        wg_prefetch_step(i, pf, npf, pf2, npf2);
        wg_v16 b0 = *(const wg_v16 *)(b + (size_t)i * WG_COLS);
        wg_v16 b1 = *(const wg_v16 *)(b + (size_t)i * WG_COLS + 16);
#pragma GCC unroll 16
        for (int r = 0; r < rows; r++) {
            const float s = a[r * lda + i];
            if (isa == BN_WINOGRAD_AVX512) {
                const wg_v16 sv = WG_SPLAT16(s);
                wg_fma_into_avx512(&c0[r], &sv, &b0);
                wg_fma_into_avx512(&c1[r], &sv, &b1);
            } else {
                c0[r] = WG_MUL_ADD(s, b0, c0[r]);
                c1[r] = WG_MUL_ADD(s, b1, c1[r]);
            }
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < rows; r++) {
        *(wg_v16 *)(c + r * ldc) = c0[r];
        *(wg_v16 *)(c + r * ldc + WG_P * 16) = c1[r];
    }
}

/* wg_kernel for a run-time row count. Full calls get a compile-time lda
 * for the channel counts of VGG16: the 14 rows are then one base register
 * plus constant offsets; with a run-time lda GCC runs out of registers for 14
 * row addresses and reloads them, one extra load per FMA pair, which makes
 * the kernel load-bound (measured: 10-15% slower). */
WG_INLINE void wg_kernel_rows(const int isa, const int prec, int rows, int k, const void *a,
                              size_t lda, const void *b, float *c, size_t ldc, const char *pf,
                              int npf, const char *pf2, int npf2, const float *sc, size_t nch,
                              int emu) {
    /* (FP16's chunk is one asm statement with lda in a register already.) */
    if (rows == WG_ROWS && prec != WG_F16)
        switch (lda) {
#define WG_LDA(L)                                                                                  \
    case L:                                                                                        \
        wg_kernel(isa, prec, WG_ROWS, k, a, L, b, c, ldc, pf, npf, pf2, npf2, sc, nch, emu);       \
        return;
            WG_LDA(16)
            WG_LDA(32)
            WG_LDA(64)
            WG_LDA(128)
            WG_LDA(256)
            WG_LDA(512)
#undef WG_LDA
        default: break;
        }
    switch (rows) {
#define WG_CASE(R)                                                                                 \
    case R: wg_kernel(isa, prec, R, k, a, lda, b, c, ldc, pf, npf, pf2, npf2, sc, nch, emu); break;
        WG_CASE(14)
        WG_CASE(13)
        WG_CASE(12)
        WG_CASE(11)
        WG_CASE(10)
        WG_CASE(9)
        WG_CASE(8)
        WG_CASE(7)
        WG_CASE(6)
        WG_CASE(5)
        WG_CASE(4)
        WG_CASE(3)
        WG_CASE(2)
        WG_CASE(1)
#undef WG_CASE
    default: break;
    }
}

/* The FP32 kernel for AVX2 (16 ymm registers, not AVX-512's 32 zmm): rows
 * <= WG_ROWS8 tiles by one half (16 columns) of a 32-column panel of U at b,
 * so 2 x rows accumulators of 8 floats, two loads of B and one broadcast per
 * step: 15 registers at 6 rows. Each output is the same sum in the same order
 * as wg_kernel's (one fused multiply-add per channel, channels in order); the
 * transforms around it may still round otherwise in this build (conv.h), so
 * tests/test_winograd.c holds whole layers of the two builds to 1e-6. C's
 * half h starts at c + h * WG_P * 16, as wg_kernel stores it. */
#define WG_ROWS8 6
WG_INLINE void wg_kernel8(int rows, int k, const float *a, size_t lda, const float *b, int half,
                          float *c, size_t ldc, const char *pf, int npf, const char *pf2,
                          int npf2) {
    wg_v8 c0[WG_ROWS8], c1[WG_ROWS8];
    b += half * 16;
    c += half * WG_P * 16;
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
        c0[r] = c1[r] = (wg_v8){0};
        /* The line written at the end, owned by then (as in wg_kernel). */
        __builtin_prefetch(c + r * ldc, 1, 3);
    }
    for (int i = 0; i < k; i++) {
        wg_prefetch_step(i, pf, npf, pf2, npf2);
        wg_v8 b0 = *(const wg_v8 *)(b + (size_t)i * WG_COLS);
        wg_v8 b1 = *(const wg_v8 *)(b + (size_t)i * WG_COLS + 8);
#pragma GCC unroll 8
        for (int r = 0; r < rows; r++) {
            const float s = a[r * lda + i];
            const wg_v8 sv = {s, s, s, s, s, s, s, s};
            wg_fma_into_avx2(&c0[r], &sv, &b0);
            wg_fma_into_avx2(&c1[r], &sv, &b1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < rows; r++) {
        *(wg_v8 *)(c + r * ldc) = c0[r];
        *(wg_v8 *)(c + r * ldc + 8) = c1[r];
    }
}

/* Of n cache lines dealt out in slices of s, how many part q gets (the
 * last parts fewer, or none): the prefetches shared among kernel calls, and
 * V[p + 1] among a position's tasks. */
WG_INLINE int wg_slice(int n, int s, int q) {
    const int left = n - q * s;
    return left < 0 ? 0 : left < s ? left : s;
}

/* One group of rows (<= WG_ROWS8) of wg_kernel's work: both halves of the
 * 32 columns, the prefetches with the first. */
WG_INLINE void wg_kernel8_group(int rows, int k, const float *a, size_t lda, const float *b,
                                float *c, size_t ldc, const char *pf, int npf, const char *pf2,
                                int npf2) {
    for (int half = 0; half < 2; half++) {
        switch (rows) {
#define WG_CASE8(R)                                                                                \
    case R: wg_kernel8(R, k, a, lda, b, half, c, ldc, pf, npf, pf2, npf2); break;
            WG_CASE8(6)
            WG_CASE8(5)
            WG_CASE8(4)
            WG_CASE8(3)
            WG_CASE8(2)
            WG_CASE8(1)
#undef WG_CASE8
        default: break;
        }
        npf = npf2 = 0;
    }
}

/* wg_kernel's work (all 32 columns) for any number of rows, the block's
 * whole count in the engine: groups of at most WG_ROWS8 rows, as even as
 * they can be (14 = 4 + 5 + 5, 28 = 5 + 5 + 6 + 6 + 6). Why not the 14-row
 * blocks of wg_kernel: a group of 4 rows has 8 accumulators, fewer than the
 * 10 multiply-adds in flight that keep two FMA units of latency 5 busy (Zen
 * 2), so it runs at 80%; and 2-row groups (14 = 6 + 6 + 2) at 40%. The npf
 * lines from pf and npf2 from pf2 are prefetched a slice per group. */
WG_INLINE void wg_kernel8_rows(int rows, int k, const float *a, size_t lda, const float *b,
                               float *c, size_t ldc, const char *pf, int npf, const char *pf2,
                               int npf2) {
    const int groups = (rows + WG_ROWS8 - 1) / WG_ROWS8;
    const int s1 = (npf + groups - 1) / groups, s2 = (npf2 + groups - 1) / groups;
    for (int q = 0, r0 = 0; q < groups; q++) {
        const int nr = (rows - r0) / (groups - q); /* the rest shared evenly: larger last */
        const int n1 = wg_slice(npf, s1, q), n2 = wg_slice(npf2, s2, q);
        wg_kernel8_group(nr, k, a + (size_t)r0 * lda, lda, b, c + (size_t)r0 * ldc, ldc,
                         n1 ? pf + (size_t)q * s1 * 64 : NULL, n1,
                         n2 ? pf2 + (size_t)q * s2 * 64 : NULL, n2);
        r0 += nr;
    }
}

/* Image of tile t and the tile's top-left output pixel in it. */
static void wg_tile_origin(const wg_geom *g, size_t t, size_t *img, int *y0, int *x0) {
    size_t r = t % g->tpi;
    *img = t / g->tpi;
    *y0 = (int)(r / (size_t)g->tiles_x) * WG_M;
    *x0 = (int)(r % (size_t)g->tiles_x) * WG_M;
}

/* Tiles per task in steps 1 and 3. */
#define WG_TILES_PER_TASK 4

/* Step 1 for tiles [i0, i1) of the block starting at tile t0. */
WG_INLINE void wg_step_input(wg_job *j, float *v, size_t t0, size_t i0, size_t i1, size_t cnt,
                             const int prec, const int isa) {
    const wg_geom *g = &j->g;
    assert(t0 + i1 <= g->tiles && i1 <= cnt && cnt <= g->tb);
    for (size_t i = i0; i < i1; i++) {
        size_t img, nimg = 0;
        int y0, x0, ny0 = -1, nx0 = -1;
        const float *next = NULL;
        wg_tile_origin(g, t0 + i, &img, &y0, &x0);
        if (i + 1 < cnt) {
            wg_tile_origin(g, t0 + i + 1, &nimg, &ny0, &nx0);
            if (wg_inside(g, ny0 - 1, WG_N, nx0 - 1, WG_N))
                next =
                    j->in + ((nimg * g->h + (size_t)(ny0 - 1)) * g->w + (size_t)(nx0 - 1)) * g->cin;
        }
        int nfrom = nimg == img && ny0 == y0 && nx0 == x0 + WG_M ? WG_N - WG_M : 0;
        void *row =
            prec != WG_F32 ? (void *)((uint16_t *)v + i * g->cinp) : (void *)(v + i * g->cinp);
        float *sc = g->fp16 ? v + WG_P * g->vstride / 2 + i * g->nch : NULL;
        wg_input_tile(j, img, y0 - 1, x0 - 1, row, sc, next, nfrom, prec, isa);
    }
}

/* The share of V[pnext], the V this thread reads next, that the task
 * (p, cb) prefetches when V was written past the caches: *lines lines from
 * the address returned (NULL, 0 lines: none). See wg_step_product. */
static inline const char *wg_vnext(const wg_job *j, const float *v, size_t cnt, int p, int cb,
                                   int nth, size_t esize, int *lines) {
    const wg_geom *g = &j->g;
    const int nblk = g->coutp / WG_COLS, pnext = p + (j->position_tasks ? nth : 1);
    *lines = 0;
    if (!j->vstream || pnext >= WG_P)
        return NULL;
    const int parts = j->position_tasks ? nblk : nblk / nth > 0 ? nblk / nth : 1;
    const int part = j->position_tasks ? cb : cb / nth;
    int all = (int)(cnt * g->cinp * esize / 64);
    int share = (all + parts - 1) / parts;
    *lines = wg_slice(all, share, part);
    return (const char *)v + (size_t)pnext * g->vstride * esize + (size_t)part * share * 64;
}

/* Step 2, one output block: M[p] (columns of output block cb) = V[p] U[p]
 * for the cnt tiles of the block. While the panel of U is in use, its kernel
 * calls prefetch `unext` (the panel this thread likely takes next), a slice
 * each, so that the first pass over a panel (from memory: U is read once per
 * block) does not wait. When V was written past the caches (j->vstream),
 * they also prefetch a share of the V this thread reads next, into its own
 * L2: with whole positions per task (j->position_tasks), V[p + nth], one
 * nblk-th per output block; else V[p + 1], which every thread reads, a share
 * among the nblk / nth tasks this thread likely takes at position p. */
WG_INLINE void wg_step_product(wg_job *j, const float *v, float *m, size_t cnt, int p, int cb,
                               const void *unext, int nth, const int prec, const int isa) {
    const wg_geom *g = &j->g;
    const int bf16 = prec == WG_BF16, half = prec != WG_F32; /* V and U in 2 bytes */
    const int nblk = g->coutp / WG_COLS;
    const size_t ublk = (size_t)g->cinp * WG_COLS; /* elements of one (p, cb) panel of U */
    const size_t esize = half ? 2 : 4;             /* bytes per V and U element */
    const float *vp = half ? NULL : v + (size_t)p * g->vstride;
    const float *up = half ? NULL : j->u + ((size_t)p * nblk + cb) * ublk;
    const uint16_t *vpb = half ? (const uint16_t *)v + (size_t)p * g->vstride : NULL;
    const uint16_t *upb = half ? j->ub + ((size_t)p * nblk + cb) * ublk : NULL;
    /* FP16: the tiles' chunk scales, after V */
    const float *sc = g->fp16 ? v + WG_P * g->vstride / 2 : NULL;
    assert(cnt <= g->tb && p < WG_P && cb < nblk); /* M's rows and V's positions stay in bounds */
    const int ulines = (int)(ublk * esize / 64);
    int vlines;
    const char *vnext = wg_vnext(j, v, cnt, p, cb, nth, esize, &vlines);
    if (isa == BN_WINOGRAD_AVX2) { /* FP32 only: every row of the block in one call */
        wg_kernel8_rows((int)cnt, g->cin, vp, g->cinp, up, m + (size_t)cb * 2 * WG_P * 16 + p * 16,
                        g->mtile, (const char *)unext, unext ? ulines : 0, vnext, vlines);
        return;
    }
    /* The prefetches shared among the block's 14-row kernel calls */
    const size_t nrb = (cnt + WG_ROWS - 1) / WG_ROWS;
    const int uslice = (ulines + (int)nrb - 1) / (int)nrb;
    const int vslice = (vlines + (int)nrb - 1) / (int)nrb;
    for (size_t rb = 0; rb < nrb; rb++) {
        int vf = (int)rb * vslice, vn = wg_slice(vlines, vslice, (int)rb);
        size_t r = rb * WG_ROWS;
        int rows = cnt - r < WG_ROWS ? (int)(cnt - r) : WG_ROWS;
        int first = (int)rb * uslice, npf = unext ? wg_slice(ulines, uslice, (int)rb) : 0;
        float *mr = m + r * g->mtile + (size_t)cb * 2 * WG_P * 16 + p * 16;
        const char *pf = unext ? (const char *)unext + (size_t)first * 64 : NULL;
        const char *pf2 = vnext ? vnext + (size_t)vf * 64 : NULL;
        /* BF16: pairs of channels; an odd cin's last pair has a zero partner */
        const void *a = half ? (const void *)(vpb + r * g->cinp) : (const void *)(vp + r * g->cinp);
        wg_kernel_rows(isa, prec, rows, bf16 ? (g->cin + 1) / 2 : g->cin, a, g->cinp,
                       half ? (const void *)upb : (const void *)up, mr, g->mtile, pf, npf, pf2, vn,
                       sc ? sc + r * g->nch : NULL, g->nch, j->f16emu);
    }
}

/* wg_step_product compiled once per engine, not inlined into both loops of
 * wg_work: its kernel is 20 unrolled instances (rows, lda), and two copies of
 * them per engine doubled the build's slowest file for nothing (a call per
 * 32 output channels of a block costs nothing measurable). */
typedef void wg_product_fn(wg_job *j, const float *v, float *m, size_t cnt, int p, int cb,
                           const void *unext, int nth);
#define WG_PRODUCT(NAME, ATTR, PREC, ISA)                                                          \
    static ATTR __attribute__((noinline)) void NAME(wg_job *j, const float *v, float *m,           \
                                                    size_t cnt, int p, int cb, const void *unext,  \
                                                    int nth) {                                     \
        wg_step_product(j, v, m, cnt, p, cb, unext, nth, PREC, ISA);                               \
    }
WG_PRODUCT(wg_product_avx512, WG_AVX512, WG_F32, BN_WINOGRAD_AVX512)
WG_PRODUCT(wg_product_bf16, WG_AVX512, WG_BF16, BN_WINOGRAD_AVX512)
WG_PRODUCT(wg_product_fp16, WG_AVX512, WG_F16, BN_WINOGRAD_AVX512)
WG_PRODUCT(wg_product_avx2, WG_AVX2, WG_F32, BN_WINOGRAD_AVX2)
WG_PRODUCT(wg_product_generic, , WG_F32, BN_WINOGRAD_PORTABLE)
#undef WG_PRODUCT

/* Step 2 on AMX tiles (winograd_amx.h): as wg_step_product, in groups of
 * WG_AMX_ROWS tiles (the block's last group past cnt: rows that nothing
 * reads), every chunk of 32 channels (padding channels are zero in V and
 * U). The prefetches of what comes next are dealt out over the groups. The
 * caller has configured the tiles (bn_amx_begin). */
static __attribute__((noinline)) void wg_product_amx(wg_job *j, const float *v, float *m,
                                                     size_t cnt, int p, int cb, const void *unext,
                                                     int nth) {
    const wg_geom *g = &j->g;
    const int nblk = g->coutp / WG_COLS;
    const size_t ublk = (size_t)g->cinp * WG_COLS;
    const uint16_t *vp = (const uint16_t *)v + (size_t)p * g->vstride;
    const uint16_t *up = j->ub + ((size_t)p * nblk + cb) * ublk;
    /* whole groups stay inside V's position and M's rows */
    assert(g->amx && cnt <= g->tb && g->tb % WG_AMX_ROWS == 0 && p < WG_P && cb < nblk);
    int vlines;
    const char *vnext = wg_vnext(j, v, cnt, p, cb, nth, 2, &vlines);
    const int ulines = unext ? (int)(ublk * 2 / 64) : 0;
    const int groups = (int)((cnt + WG_AMX_ROWS - 1) / WG_AMX_ROWS);
    const int us = (ulines + groups - 1) / groups, vs = (vlines + groups - 1) / groups;
    for (int q = 0; q < groups; q++) {
        size_t r = (size_t)q * WG_AMX_ROWS;
        /* U's panel: chunk k's 16 pairs x 32 outputs x 2, 128 bytes a pair */
        bn_amx_group(g->cinp / 32, vp + r * g->cinp, (size_t)g->cinp * 2, up, 32, 128, 16 * 64,
                     m + r * g->mtile + (size_t)cb * 2 * WG_P * 16 + p * 16, g->mtile * 4,
                     WG_P * 16, unext ? (const char *)unext + (size_t)q * us * 64 : NULL,
                     wg_slice(ulines, us, q), vnext ? vnext + (size_t)q * vs * 64 : NULL,
                     wg_slice(vlines, vs, q));
    }
}

/* Step 3 for tiles [i0, i1) of the block starting at tile t0, all channels. */
WG_INLINE void wg_step_output(wg_job *j, const float *m, size_t t0, size_t i0, size_t i1,
                              const int isa) {
    assert(t0 + i1 <= j->g.tiles && i1 <= j->g.tb);
    for (size_t i = i0; i < i1; i++) {
        size_t img;
        int y0, x0;
        wg_tile_origin(&j->g, t0 + i, &img, &y0, &x0);
        wg_output_tile(j, m + i * j->g.mtile, img, y0, x0, 0, wg_round_up(j->g.cout, 16), isa);
    }
}

/* One thread's share of a forward call. Shared blocks: every block, each
 * step's tasks taken from its queue (step 1: WG_TILES_PER_TASK tiles; step
 * 2: one position and 32 output channels; step 3: tiles again), waiting
 * between steps for the other threads' tasks that the next step needs.
 * Private blocks: whole blocks taken from a queue, in this thread's own V
 * and M, no waiting. */
WG_INLINE void wg_work(wg_job *j, int tid, int nth, const int prec, wg_product_fn *product,
                       const int isa) {
    const wg_geom *g = &j->g;
    const unsigned nblocks = (unsigned)((g->tiles + g->tb - 1) / g->tb);
    const unsigned nblk = (unsigned)(g->coutp / WG_COLS);
    /* bytes of one (p, cb) panel of U, and U's first byte */
    const size_t ublk = (size_t)g->cinp * WG_COLS * (prec != WG_F32 ? 2 : 4);
    const char *u0 = prec != WG_F32 ? (const char *)j->ub : (const char *)j->u;
    const unsigned per13 = (unsigned)((g->tb + WG_TILES_PER_TASK - 1) / WG_TILES_PER_TASK);
    /* (p, cb) pairs per block; the shared blocks' products tasks per block:
     * those pairs, or whole positions */
    const unsigned pairs = WG_P * nblk, per2 = j->position_tasks ? WG_P : pairs;
    if (j->private_blocks) {
        float *v = j->v + (size_t)tid * (g->vfloats + g->mfloats), *m = v + g->vfloats;
        for (unsigned blk; bn_pool_take(&j->blocks, nblocks, &blk);) {
            size_t t0 = (size_t)blk * g->tb, cnt = g->tiles - t0 < g->tb ? g->tiles - t0 : g->tb;
#ifdef WG_PROFILE
            double wg_t0 = tid == 0 ? wg_cpu() : 0;
#endif
            wg_step_input(j, v, t0, 0, cnt, cnt, prec, isa);
            WG_T(0);
            for (unsigned k = 0; k < pairs; k++) {
                unsigned kn = k + 1 < pairs ? k + 1 : k;
                product(j, v, m, cnt, (int)(k / nblk), (int)(k % nblk),
                        k + 1 < pairs ? u0 + (size_t)kn * ublk : NULL, 1);
            }
            WG_T(1);
            wg_step_output(j, m, t0, 0, cnt, isa);
            WG_T(2);
        }
        return;
    }
    for (unsigned blk = 0; blk < nblocks; blk++) {
        size_t t0 = (size_t)blk * g->tb, cnt = g->tiles - t0 < g->tb ? g->tiles - t0 : g->tb;
        unsigned n13 = (unsigned)((cnt + WG_TILES_PER_TASK - 1) / WG_TILES_PER_TASK);
        unsigned end1 = blk * per13 + n13, end2 = (blk + 1) * per2, end3 = end1;
        unsigned task;
#ifdef WG_PROFILE
        double wg_t0 = tid == 0 ? wg_cpu() : 0;
#endif
        /* 1 (V was freed by the previous block's step 2, waited for below). */
        while (bn_pool_take(&j->q[0], end1, &task)) {
            size_t i0 = (size_t)(task - blk * per13) * WG_TILES_PER_TASK;
            size_t i1 = i0 + WG_TILES_PER_TASK < cnt ? i0 + WG_TILES_PER_TASK : cnt;
            wg_step_input(j, j->v, t0, i0, i1, cnt, prec, isa);
            if (j->vstream) /* V complete before the products read it */
                wg_stream_fence();
            bn_pool_finish(&j->q[0], end1);
        }
        WG_T(0);
        bn_pool_wait_done(&j->q[0], end1);
        if (blk > 0) /* M free: the previous block's step 3 is over */
            bn_pool_wait_done(&j->q[2], blk * per13);
        WG_T(3);
        /* 2. Tasks in (p, cb) order: the threads sweep the positions together.
         * Or each task a whole position, its output blocks in order, so that
         * V[p] crosses from memory into one core's L2, not every core's (2
         * threads, V past the caches: 3-6% off block2_conv2-block5 on Zen 2). */
        while (bn_pool_take(&j->q[1], end2, &task)) {
            unsigned k = task - blk * per2, kn = k + (unsigned)nth;
            if (j->position_tasks) {
                for (unsigned cb = 0; cb < nblk; cb++) {
                    /* next: this position's next panel, else the first of p + nth */
                    unsigned un = cb + 1 < nblk ? k * nblk + cb + 1 : kn * nblk;
                    product(j, j->v, j->m, cnt, (int)k, (int)cb,
                            un < pairs ? u0 + (size_t)un * ublk : NULL, nth);
                }
            } else {
                product(j, j->v, j->m, cnt, (int)(k / nblk), (int)(k % nblk),
                        kn < pairs ? u0 + (size_t)kn * ublk : NULL, nth);
            }
            bn_pool_finish(&j->q[1], end2);
        }
        WG_T(1);
        bn_pool_wait_done(&j->q[1], end2);
        WG_T(3);
        /* 3. Whoever is done here goes on to the next block's step 1. */
        while (bn_pool_take(&j->q[2], end3, &task)) {
            size_t i0 = (size_t)(task - blk * per13) * WG_TILES_PER_TASK;
            size_t i1 = i0 + WG_TILES_PER_TASK < cnt ? i0 + WG_TILES_PER_TASK : cnt;
            wg_step_output(j, j->m, t0, i0, i1, isa);
            bn_pool_finish(&j->q[2], end3);
        }
        WG_T(2);
    }
}

static WG_AVX512 void wg_work_avx512(void *arg, int tid, int nth) {
    wg_work(arg, tid, nth, WG_F32, wg_product_avx512, BN_WINOGRAD_AVX512);
    if (((wg_job *)arg)->stream)
        wg_stream_fence();
}

/* The BF16 products (winograd_bf16.h): only on CPUs with avx512_bf16. */
static WG_AVX512 void wg_work_bf16(void *arg, int tid, int nth) {
    wg_work(arg, tid, nth, WG_BF16, wg_product_bf16, BN_WINOGRAD_AVX512);
    if (((wg_job *)arg)->stream)
        wg_stream_fence();
}

/* The AMX products (winograd_amx.h): BF16's engine around them. */
static WG_AVX512 void wg_work_amx(void *arg, int tid, int nth) {
    bn_amx_begin();
    wg_work(arg, tid, nth, WG_BF16, wg_product_amx, BN_WINOGRAD_AVX512);
    bn_amx_end();
    if (((wg_job *)arg)->stream)
        wg_stream_fence();
}

/* The FP16 products (winograd_fp16.h): on CPUs with avx512_fp16. */
static WG_AVX512 void wg_work_fp16(void *arg, int tid, int nth) {
    wg_work(arg, tid, nth, WG_F16, wg_product_fp16, BN_WINOGRAD_AVX512);
    if (((wg_job *)arg)->stream)
        wg_stream_fence();
}

/* The FP32 engine for CPUs with AVX2 and FMA but no AVX-512: the same
 * template, the products in wg_kernel8 and the transforms in
 * wg_input_vec8 and wg_output_vec8 (8 floats a vector, 16 registers). */
static WG_AVX2 void wg_work_avx2(void *arg, int tid, int nth) {
    wg_work(arg, tid, nth, WG_F32, wg_product_avx2, BN_WINOGRAD_AVX2);
    if (((wg_job *)arg)->stream)
        wg_stream_fence();
}

static void wg_work_generic(void *arg, int tid, int nth) {
    wg_work(arg, tid, nth, WG_F32, wg_product_generic, BN_WINOGRAD_PORTABLE);
}

/* Whether the FP16 products run in software: asked for ($BN_FP16_EMULATE
 * non-empty and not "0"), or no avx512_fp16 here. */
static int wg_f16_emulated(void) {
    const char *e = getenv("BN_FP16_EMULATE");
    return (e && *e && strcmp(e, "0") != 0) || !bn_cpu_features_get()->avx512_fp16;
}

int bn_conv_winograd_fp16_emulated(void) {
    return wg_f16_emulated();
}

/* ------------------------------------------------------------------------ */
/* The engine                                                                */
/* ------------------------------------------------------------------------ */

/* The kernel cache's name for U (kcache.h): its layout and the version of
 * its arithmetic. Change the version whenever either changes, or entries
 * written by an older build would be read as valid. */
#define WG_CACHE_KIND "winograd-f6x6-u32-v1"

typedef struct {
    float *u;
    const float *kernel;
    int cin, cout, cinp, nblk;
    bn_pool_queue q;
} wg_ujob;

/* U for input channel ci and the 32 output channels of block blk:
 * U[p][blk][ci][0..31] = (G g G^T)[p], computed in double and rounded once,
 * with exactly the operations (and their order) of the reference loop it
 * replaced, so the bytes are the same: only the loops are turned inside out,
 * the 32 output channels innermost (contiguous in the kernel and in U:
 * vector loops and whole-line writes). Channels past cout are zero. */
static void wg_transform_block(const wg_ujob *t, int ci, int blk) {
    const int cin = t->cin, cout = t->cout;
    double g[3][3][WG_COLS], gt[WG_N][3][WG_COLS];
    int n = cout - blk * WG_COLS < WG_COLS ? cout - blk * WG_COLS : WG_COLS;
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const float *k = t->kernel + ((size_t)(ky * 3 + kx) * cin + ci) * cout + blk * WG_COLS;
            for (int j = 0; j < WG_COLS; j++)
                g[ky][kx][j] = j < n ? k[j] : 0.0;
        }
    for (int a = 0; a < WG_N; a++)
        for (int kx = 0; kx < 3; kx++)
            for (int j = 0; j < WG_COLS; j++)
                gt[a][kx][j] =
                    wg_G[a][0] * g[0][kx][j] + wg_G[a][1] * g[1][kx][j] + wg_G[a][2] * g[2][kx][j];
    for (int a = 0; a < WG_N; a++)
        for (int b = 0; b < WG_N; b++) {
            size_t p = (size_t)a * WG_N + b;
            float *u = t->u + ((p * t->nblk + blk) * t->cinp + ci) * WG_COLS;
            for (int j = 0; j < WG_COLS; j++)
                u[j] = (float)(gt[a][0][j] * wg_G[b][0] + gt[a][1][j] * wg_G[b][1] +
                               gt[a][2][j] * wg_G[b][2]);
            /* +0, not the -0 that negative weights of G make of a zero */
            for (int j = n; j < WG_COLS; j++)
                u[j] = 0.0f;
        }
}

/* Pool job: tasks of one input channel (all its output blocks); the padding
 * channels cin..cinp-1 are zeroed by their tasks too, so every byte of U is
 * written once, by one thread, with no memset before. */
static void wg_transform_work(void *arg, int tid, int nth) {
    (void)tid;
    (void)nth;
    wg_ujob *t = arg;
    unsigned ci;
    while (bn_pool_take(&t->q, (unsigned)t->cinp, &ci))
        for (int blk = 0; blk < t->nblk; blk++) {
            if ((int)ci < t->cin) {
                wg_transform_block(t, (int)ci, blk);
                continue;
            }
            for (size_t p = 0; p < WG_P; p++)
                memset(t->u + ((p * t->nblk + blk) * t->cinp + ci) * WG_COLS, 0,
                       WG_COLS * sizeof(float));
        }
}

/* The BF16 U (winograd_bf16.h) from the FP32 one in c->packed (cinp32 =
 * cin rounded up to 32): U[p][cout/32][cinp32/2][32][2], each value the FP32
 * U rounded once more, to bfloat16; padding channels zero. Replaces
 * c->packed (the FP32 U is released: its cached pages stay in the cache).
 * Not cached itself: one pass over U. */
static int wg_prepare_bf16(bn_conv *c, int cinp, int nblk, bn_error *err) {
    const int cin = c->cin, cinp32 = wg_round_up(cin, 32);
    const float *u = c->packed;
    size_t count = (size_t)WG_P * nblk * cinp32 * WG_COLS;
    size_t bytes = (count * sizeof(uint16_t) + WG_HUGE - 1) & ~(WG_HUGE - 1);
    uint16_t *ub = aligned_alloc(WG_HUGE, bytes);
    if (ub) {
        (void)madvise(ub, bytes, MADV_HUGEPAGE);
        for (size_t panel = 0; panel < (size_t)WG_P * nblk; panel++)
            for (int ci = 0; ci < cinp32; ci++)
                for (int co = 0; co < WG_COLS; co++)
                    ub[((panel * cinp32 + ci) / 2 * WG_COLS + co) * 2 + ci % 2] =
                        ci < cin ? bn_f32_to_bf16(u[(panel * cinp + ci) * WG_COLS + co]) : 0;
    }
    if (!bn_kcache_release(c->packed))
        free(c->packed);
    c->packed = ub;
    if (!ub) {
        bn_pool_release();
        return bn_fail(err, BN_ENOMEM, "conv_winograd: out of memory for a %dx%d BF16 kernel", cin,
                       c->cout);
    }
    return BN_OK;
}

/* The FP16 U (winograd_fp16.h) from the FP32 one in c->packed (cinp32 =
 * cin rounded up to 32): U[p][cout/32][cinp32][32], each value the FP32 U
 * times 2^t rounded to binary16, t such that the largest |U| becomes [1, 2);
 * c->uscale = 2^-t. Replaces c->packed, as wg_prepare_bf16. */
static int wg_prepare_fp16(bn_conv *c, int cinp, int nblk, bn_error *err) {
    const int cin = c->cin, cinp32 = wg_round_up(cin, 32);
    const float *u = c->packed;
    size_t panels = (size_t)WG_P * nblk, count = panels * cinp32 * WG_COLS;
    float umax = 0;
    for (size_t i = 0; i < panels * cinp * WG_COLS; i++)
        umax = fabsf(u[i]) > umax ? fabsf(u[i]) : umax;
    int e = 0;
    if (umax > 0 && isfinite(umax))
        (void)frexpf(umax, &e); /* umax = m 2^e, m in [0.5, 1): times 2^(1 - e) is in [1, 2) */
    e = 1 - e < -126 ? -126 : 1 - e > 126 ? 126 : 1 - e;
    const float up = ldexpf(1.0f, e);
    c->uscale = ldexpf(1.0f, -e);
    size_t bytes = (count * sizeof(uint16_t) + WG_HUGE - 1) & ~(WG_HUGE - 1);
    uint16_t *uh = aligned_alloc(WG_HUGE, bytes);
    if (uh) {
        (void)madvise(uh, bytes, MADV_HUGEPAGE);
        for (size_t panel = 0; panel < panels; panel++)
            for (int ci = 0; ci < cinp32; ci++)
                for (int co = 0; co < WG_COLS; co++)
                    uh[(panel * cinp32 + ci) * WG_COLS + co] =
                        ci < cin ? bn_f32_to_f16(u[(panel * cinp + ci) * WG_COLS + co] * up) : 0;
    }
    if (!bn_kcache_release(c->packed))
        free(c->packed);
    c->packed = uh;
    if (!uh) {
        bn_pool_release();
        return bn_fail(err, BN_ENOMEM, "conv_winograd: out of memory for a %dx%d FP16 kernel", cin,
                       c->cout);
    }
    return BN_OK;
}

/* The reduced-precision U from the FP32 one, if the layer runs in one. */
static int wg_prepare_precision(bn_conv *c, int cinp, int nblk, bn_error *err) {
    switch (c->precision) {
    case BN_PRECISION_BF16:
    case BN_PRECISION_AMX: return wg_prepare_bf16(c, cinp, nblk, err);
    case BN_PRECISION_FP16: return wg_prepare_fp16(c, cinp, nblk, err);
    default: return BN_OK;
    }
}

/* U[p][cout/32][cinp][32] = (G g G^T)[p] for each (ci, co), computed in double
 * and rounded once; padding channels are zero. From the kernel cache when it
 * holds this kernel's U (start-up: docs/PERFORMANCE.md), else computed on the
 * pool's threads and stored there. BF16 or FP16 (c->precision): then rounded
 * once more (wg_prepare_precision). */
static int winograd_prepare(bn_conv *c, const float *kernel, bn_error *err) {
    const int cin = c->cin, cout = c->cout;
    const int cinp = wg_round_up(cin, 16), coutp = wg_round_up(cout, WG_COLS);
    const int nblk = coutp / WG_COLS;
    size_t count = (size_t)WG_P * cinp * coutp;
    /* If a thread cannot start, the pool keeps those it has: slower, not wrong. */
    (void)bn_pool_acquire(bn_cpu_threads());
    int dims[] = {cin, cout, cinp, coutp, WG_COLS};
    bn_kcache_key key =
        bn_kcache_key_of(WG_CACHE_KIND, dims, 5, kernel, (size_t)9 * cin * cout * sizeof(float));
    const void *cached = bn_kcache_map(WG_CACHE_KIND, key, count * sizeof(float));
    if (cached) {
        c->packed = (void *)cached; /* read-only pages: the engine never writes U */
        return wg_prepare_precision(c, cinp, nblk, err);
    }
    size_t bytes = (count * sizeof(float) + WG_HUGE - 1) & ~(WG_HUGE - 1);
    float *u = aligned_alloc(WG_HUGE, bytes);
    if (!u) {
        bn_pool_release();
        return bn_fail(err, BN_ENOMEM, "conv_winograd: out of memory for a %dx%d kernel (%zu MB)",
                       cin, cout, bytes >> 20);
    }
    /* Fewer TLB misses while the products stream U; only advice. */
    (void)madvise(u, bytes, MADV_HUGEPAGE);
    wg_ujob t = {.u = u, .kernel = kernel, .cin = cin, .cout = cout, .cinp = cinp, .nblk = nblk};
    bn_pool_run(wg_transform_work, &t, bn_cpu_threads());
    (void)bn_kcache_store(WG_CACHE_KIND, key, u, count * sizeof(float));
    c->packed = u;
    return wg_prepare_precision(c, cinp, nblk, err);
}

/* The template's constant for a layer's precision (FP16 emulated or not:
 * one compiled engine, wg_job.f16emu choosing the products' code, so that
 * everything around them is the same machine code and the two give the
 * same bytes). */
static int wg_prec_of(bn_precision p) {
    return p == BN_PRECISION_BF16   ? WG_BF16
           : p == BN_PRECISION_FP16 ? WG_F16
           : p == BN_PRECISION_AMX  ? WG_AMX
                                    : WG_F32;
}

/* Bytes of V and M that a forward call on exactly n images uses. */
static size_t wg_need(const bn_conv *c, int n, int h, int w, int pool) {
    wg_geom g;
    wg_geometry(&g, c->cin, c->cout, n, h, w, pool, wg_prec_of(c->precision), bn_cpu_caches());
    return wg_workspace_bytes(&g);
}

/* Enough for any batch of 1..n images: the most that one of them needs. Not
 * simply wg_need(n): blocks are evened out over the tiles of the batch, and
 * private blocks depend on how many blocks there are, so a smaller batch can
 * need more (at 224, batch 6 or 7 needs more than 8). Sizing a network's
 * workspace for its largest batch alone let partial batches write past it
 * (the heap corruption of version 0.5). */
static size_t winograd_workspace_for(const bn_conv *c, int n, int h, int w, int pool) {
    if (n <= 0 || h <= 0 || w <= 0)
        return 0;
    size_t most = 0;
    for (int k = 1; k <= n; k++) {
        size_t need = wg_need(c, k, h, w, pool);
        most = need > most ? need : most;
    }
    return most;
}

static size_t winograd_workspace(const bn_conv *c, int n, int h, int w) {
    return winograd_workspace_for(c, n, h, w, 0);
}

static size_t winograd_workspace_pool(const bn_conv *c, int n, int h, int w) {
    return winograd_workspace_for(c, n, h, w, 1);
}

static void winograd_run(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                         void *workspace, int pool) {
    wg_job j;
    memset(&j, 0, sizeof j);
    const int prec = wg_prec_of(c->precision);
    wg_geometry(&j.g, c->cin, c->cout, n, h, w, pool, prec, bn_cpu_caches());
    j.in = in;
    j.out = out;
    j.u = prec == WG_F32 ? c->packed : NULL;
    j.ub = prec == WG_F32 ? NULL : c->packed;
    j.uscale = c->uscale;
    j.bias = c->bias;
    j.pool = pool;
    j.v = workspace;
    j.m = j.v + j.g.vfloats;
    /* V and M are written and read in scattered lines over many MB: ask for
     * huge pages (only advice, and only over whole 2 MiB pages inside the
     * workspace; pages already touched keep their size). */
    uintptr_t lo = ((uintptr_t)workspace + WG_HUGE - 1) & ~(uintptr_t)(WG_HUGE - 1);
    uintptr_t hi = ((uintptr_t)workspace + wg_workspace_bytes(&j.g)) & ~(uintptr_t)(WG_HUGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    int nth = bn_cpu_threads();
    j.private_blocks = wg_private(&j.g, nth);
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    bn_pool_fn fn = isa == BN_WINOGRAD_AVX512 ? wg_work_avx512
                    : isa == BN_WINOGRAD_AVX2 ? wg_work_avx2
                                              : wg_work_generic;
    /* bn_conv_winograd_has_precision said so */
    assert(prec == WG_F32 || fn == wg_work_avx512);
    if (prec == WG_BF16)
        fn = wg_work_bf16;
    else if (prec == WG_AMX)
        fn = wg_work_amx;
    else if (prec == WG_F16)
        fn = wg_work_fp16;
    j.f16emu = prec == WG_F16 && wg_f16_emulated();
    j.stream =
        isa != BN_WINOGRAD_PORTABLE && wg_stream_out(&j.g, pool) && ((uintptr_t)out & 63) == 0;
    j.vstream = isa != BN_WINOGRAD_PORTABLE && wg_vstream(&j.g, j.private_blocks);
    /* Measured on Zen 2 only; the AVX-512 builds keep (p, cb) tasks until
     * measured on their hosts ($BN_WG_POSITION_TASKS in the profile build). */
    j.position_tasks = !j.private_blocks && fn == wg_work_avx2;
#ifdef WG_PROFILE
    if (getenv("BN_WG_VSTREAM")) /* experiments: V, the output past the caches or not */
        j.vstream = isa != BN_WINOGRAD_PORTABLE && atoi(getenv("BN_WG_VSTREAM"));
    if (getenv("BN_WG_STREAM"))
        j.stream = j.stream && atoi(getenv("BN_WG_STREAM"));
    if (getenv("BN_WG_POSITION_TASKS")) /* products tasks of whole positions, or not */
        j.position_tasks = !j.private_blocks && atoi(getenv("BN_WG_POSITION_TASKS"));
    double before[4];
    memcpy(before, wg_prof, sizeof before);
#endif
    bn_pool_run(fn, &j, nth);
#ifdef WG_PROFILE
    if (getenv("WG_PROFILE_LAYERS")) /* one line per call: n, h, cin, cout, ms per step */
        fprintf(stderr, "WGL %d %d %d %d %.3f %.3f %.3f %.3f\n", n, h, c->cin, c->cout,
                1e3 * (wg_prof[0] - before[0]), 1e3 * (wg_prof[1] - before[1]),
                1e3 * (wg_prof[2] - before[2]), 1e3 * (wg_prof[3] - before[3]));
#endif
}

void bn_conv_winograd_plan_for(int cin, int cout, int n, int h, int w, int pool,
                               bn_precision precision, int threads,
                               const bn_cpu_cache_sizes *caches, bn_conv_winograd_plan *out) {
    static const char *const rules[] = {"l2", "l3", "large"};
    wg_geom g;
    wg_geometry(&g, cin, cout, n, h, w, pool, wg_prec_of(precision), caches);
    int private_blocks = wg_private(&g, threads);
    out->tb = g.tb;
    out->blocks = g.tb ? (g.tiles + g.tb - 1) / g.tb : 0;
    out->block_bytes = (g.vfloats + g.mfloats) * sizeof(float);
    out->budget = g.budget;
    out->rule = rules[g.rule];
    out->private_blocks = private_blocks;
    /* (the portable build never streams: wg_stream) */
    const int vec = bn_conv_winograd_isa() != BN_WINOGRAD_PORTABLE;
    out->vstream = vec && wg_vstream(&g, private_blocks);
    out->stream = vec && wg_stream_out(&g, pool);
}

/* in (n, h, w, cin) -> out (n, h, w, cout) = relu(conv3x3_same(in) + bias). */
static void winograd_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                             void *workspace) {
    winograd_run(c, in, out, n, h, w, workspace, 0);
}

/* in (n, h, w, cin) -> out (n, h/2, w/2, cout) = maxpool2x2(relu(conv3x3_same(in) + bias)),
 * h and w even: the full-size output is never written. */
static void winograd_forward_pool(const bn_conv *c, const float *in, float *out, int n, int h,
                                  int w, void *workspace) {
    winograd_run(c, in, out, n, h, w, workspace, 1);
}

static void winograd_release(bn_conv *c) {
    if (!bn_kcache_release(c->packed))
        free(c->packed);
    c->packed = NULL;
    bn_pool_release();
}

/* The best build this CPU runs, or a lesser one asked for by
 * $BN_WINOGRAD_ISA (avx2 or portable) or $BN_WINOGRAD_PORTABLE (non-empty),
 * so that tests check every build on machines that have AVX-512. */
bn_winograd_isa bn_conv_winograd_isa(void) {
    const bn_cpu_features *f = bn_cpu_features_get();
    const char *portable = getenv("BN_WINOGRAD_PORTABLE"), *cap = getenv("BN_WINOGRAD_ISA");
    bn_winograd_isa isa = f->avx512     ? BN_WINOGRAD_AVX512
                          : f->avx2_fma ? BN_WINOGRAD_AVX2
                                        : BN_WINOGRAD_PORTABLE;
    if (cap && strcmp(cap, "avx2") == 0 && isa > BN_WINOGRAD_AVX2)
        isa = BN_WINOGRAD_AVX2;
    if ((cap && strcmp(cap, "portable") == 0) || (portable && *portable))
        isa = BN_WINOGRAD_PORTABLE;
    return isa;
}

int bn_conv_winograd_avx512(void) {
    return bn_conv_winograd_isa() == BN_WINOGRAD_AVX512;
}

const bn_conv_ops bn_conv_winograd_ops = {
    .prepare = winograd_prepare,
    .workspace = winograd_workspace,
    .forward = winograd_forward,
    .release = winograd_release,
    .workspace_pool = winograd_workspace_pool,
    .forward_pool = winograd_forward_pool,
};

/* BF16 needs the AVX-512 build, vdpbf16ps and GCC (WG_HAVE_BF16). FP16
 * needs the same with avx512_fp16, or its products in software
 * ($BN_FP16_EMULATE: for tests and accuracy studies on other CPUs). */
int bn_conv_winograd_has_precision(bn_precision p) {
    const char *emu = getenv("BN_FP16_EMULATE");
    switch (p) {
    case BN_PRECISION_FP32: return 1;
    case BN_PRECISION_BF16:
        return WG_HAVE_BF16 && bn_conv_winograd_avx512() && bn_cpu_features_get()->avx512_bf16;
    case BN_PRECISION_AMX:
        return BN_HAVE_AMX && bn_conv_winograd_avx512() && bn_cpu_features_get()->amx_bf16;
    case BN_PRECISION_FP16:
        return WG_HAVE_FP16 && bn_conv_winograd_avx512() &&
               (bn_cpu_features_get()->avx512_fp16 || (emu && *emu && strcmp(emu, "0") != 0));
    default: return 0;
    }
}

/* The microbenchmark's shape: one full kernel call of a 256-channel layer. */
#define WG_BENCH_K 256
#define WG_BENCH_LDC (WG_P * WG_COLS + 16)

static double wg_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Kernel calls per second on data in cache, for `seconds`. */
static WG_AVX512 double wg_bench_calls(int prec, int emu, const void *a, const void *b, float *c,
                                       const float *sc, double seconds) {
    long calls = 0;
    double t0 = wg_now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            if (prec == WG_F16)
                wg_kernel_rows(BN_WINOGRAD_AVX512, WG_F16, WG_ROWS, WG_BENCH_K, a, WG_BENCH_K, b, c,
                               WG_BENCH_LDC, NULL, 0, NULL, 0, sc, WG_BENCH_K / WG_F16_K, emu);
            else
                wg_kernel_rows(BN_WINOGRAD_AVX512, prec, WG_ROWS,
                               prec == WG_BF16 ? WG_BENCH_K / 2 : WG_BENCH_K, a, WG_BENCH_K, b, c,
                               WG_BENCH_LDC, NULL, 0, NULL, 0, NULL, 0, 0);
            __asm__ volatile("" ::: "memory"); /* every call's stores happen */
        }
        calls += 64;
        t = wg_now();
    } while (t - t0 < seconds);
    return calls / (t - t0);
}

/* The same with the AVX2 build's FP32 kernel (wg_kernel8_rows). */
static WG_AVX2 double wg_bench_calls8(const float *a, const float *b, float *c, double seconds) {
    long calls = 0;
    double t0 = wg_now(), t;
    do {
        for (int i = 0; i < 64; i++) {
            wg_kernel8_rows(WG_ROWS, WG_BENCH_K, a, WG_BENCH_K, b, c, WG_BENCH_LDC, NULL, 0, NULL,
                            0);
            __asm__ volatile("" ::: "memory");
        }
        calls += 64;
        t = wg_now();
    } while (t - t0 < seconds);
    return calls / (t - t0);
}

/* The AMX kernel's rate: groups of WG_AMX_ROWS tiles x 32 outputs x
 * WG_BENCH_K channels, data in cache. G multiply-adds per second. */
static double wg_bench_amx(int reps, double seconds) {
    const size_t abytes = (size_t)WG_AMX_ROWS * WG_BENCH_K * 2, bbytes = (size_t)WG_BENCH_K * 64;
    const size_t cbytes = ((size_t)WG_AMX_ROWS * WG_BENCH_LDC + WG_P * 16) * sizeof(float);
    char *mem = aligned_alloc(64, abytes + bbytes + cbytes);
    if (!mem)
        return 0;
    uint16_t *a = (uint16_t *)mem, *b = (uint16_t *)(mem + abytes);
    float *c = (float *)(mem + abytes + bbytes);
    for (size_t i = 0; i < abytes / 2; i++)
        a[i] = bn_f32_to_bf16((float)(i % 7) * 0.125f + 0.5f);
    for (size_t i = 0; i < bbytes / 2; i++)
        b[i] = bn_f32_to_bf16((float)(i % 5) * 0.0625f - 0.125f);
    double best = 0;
    bn_amx_begin();
    for (int r = 0; r < reps; r++) {
        long calls = 0;
        double t0 = wg_now(), t;
        do {
            for (int i = 0; i < 64; i++)
                bn_amx_group(WG_BENCH_K / 32, a, WG_BENCH_K * 2, b, 32, 128, 16 * 64, c,
                             WG_BENCH_LDC * 4, WG_P * 16, NULL, 0, NULL, 0);
            calls += 64;
            t = wg_now();
        } while (t - t0 < seconds);
        best = calls / (t - t0) > best ? calls / (t - t0) : best;
    }
    bn_amx_end();
    free(mem);
    return best * WG_AMX_ROWS * WG_COLS * WG_BENCH_K / 1e9;
}

double bn_conv_winograd_kernel_gmacs(bn_precision p, int reps, double seconds) {
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    if (!bn_conv_winograd_has_precision(p) || isa == BN_WINOGRAD_PORTABLE)
        return 0;
    if (p == BN_PRECISION_AMX)
        return wg_bench_amx(reps, seconds);
    const int prec = wg_prec_of(p), emu = prec == WG_F16 && wg_f16_emulated();
    size_t abytes = (size_t)WG_ROWS * WG_BENCH_K * 4, bbytes = (size_t)WG_BENCH_K * WG_COLS * 4;
    size_t cbytes = ((size_t)WG_ROWS * WG_BENCH_LDC + WG_P * 16) * sizeof(float);
    size_t sbytes = (size_t)WG_ROWS * (WG_BENCH_K / WG_F16_K) * sizeof(float);
    char *mem = aligned_alloc(64, abytes + bbytes + cbytes + sbytes);
    if (!mem)
        return 0;
    /* Small values whose products and sums stay normal in every format. */
    float *af = (float *)mem, *bf = (float *)(mem + abytes),
          *sc = (float *)(mem + abytes + bbytes + cbytes);
    for (size_t i = 0; i < abytes / 4; i++)
        af[i] = (float)(i % 7) * 0.125f + 0.5f;
    for (size_t i = 0; i < bbytes / 4; i++)
        bf[i] = (float)(i % 5) * 0.0625f - 0.125f;
    if (prec == WG_F16) { /* A and B binary16 (the first half of their bytes) */
        uint16_t *ah = (uint16_t *)af, *bh = (uint16_t *)bf;
        for (size_t i = 0; i < abytes / 4; i++)
            ah[i] = bn_f32_to_f16(af[i]);
        for (size_t i = 0; i < bbytes / 4; i++)
            bh[i] = bn_f32_to_f16(bf[i]);
        for (size_t i = 0; i < sbytes / 4; i++)
            sc[i] = 1.0f;
    }
    double best = 0;
    for (int r = 0; r < reps; r++) {
        float *c = (float *)(mem + abytes + bbytes);
        double rate = isa == BN_WINOGRAD_AVX2 ? wg_bench_calls8(af, bf, c, seconds)
                                              : wg_bench_calls(prec, emu, af, bf, c, sc, seconds);
        best = rate > best ? rate : best;
    }
    free(mem);
    return best * WG_ROWS * WG_COLS * WG_BENCH_K / 1e9;
}

/* One thread runs every (position, 32 output channels) task of the products
 * step over the first block of a layer, in the engine's order and with its
 * prefetch of the next panel of U; same_position puts every task at position
 * 0, so that V[0] and U[0] stay in the caches while M is still written at the
 * engine's strides. cnt: the block's tiles. Returns blocks per second. */
static double wg_bench_block(wg_job *j, wg_product_fn *product, size_t cnt, int same_position,
                             double seconds) {
    const wg_geom *g = &j->g;
    const unsigned nblk = (unsigned)(g->coutp / WG_COLS), per2 = WG_P * nblk;
    const size_t ublk = (size_t)g->cinp * WG_COLS * (g->bf16 || g->fp16 ? 2 : 4);
    const char *u0 = g->bf16 || g->fp16 ? (const char *)j->ub : (const char *)j->u;
    long blocks = 0;
    double t0 = wg_now(), t;
    do {
        for (unsigned k = 0; k < per2; k++) {
            unsigned kk = same_position ? k % nblk : k, kn = kk + 1;
            product(j, j->v, j->m, cnt, (int)(kk / nblk), (int)(kk % nblk),
                    k + 1 < per2 ? u0 + (size_t)kn * ublk : NULL, 1);
        }
        blocks++;
        t = wg_now();
    } while (t - t0 < seconds);
    return blocks / (t - t0);
}

/* Element i of a block of U or V at base, x in g's format: float, or
 * rounded to bfloat16 (as prepare and the input transform round) or to
 * binary16. */
static void wg_bench_put(const wg_geom *g, char *base, size_t i, float x) {
    if (!g->bf16 && !g->fp16) {
        memcpy(base + 4 * i, &x, sizeof x);
        return;
    }
    uint16_t h = g->fp16 ? bn_f32_to_f16(x) : bn_f32_to_bf16(x);
    memcpy(base + 2 * i, &h, sizeof h);
}

double bn_conv_winograd_products_gmacs(bn_precision p, int cin, int cout, int n, int h, int w,
                                       int same_position, int reps, double seconds) {
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    if (!bn_conv_winograd_has_precision(p) || isa == BN_WINOGRAD_PORTABLE || cin < 1 || cout < 1 ||
        n < 1 || h < 1 || w < 1)
        return 0;
    const int prec = wg_prec_of(p);
    wg_job j;
    memset(&j, 0, sizeof j);
    wg_geometry(&j.g, cin, cout, n, h, w, 0, prec, bn_cpu_caches());
    const wg_geom *g = &j.g;
    const size_t ubytes = (g->ubytes + 63) / 64 * 64;
    const size_t bytes =
        (ubytes + (g->vfloats + g->mfloats) * sizeof(float) + WG_HUGE - 1) / WG_HUGE * WG_HUGE;
    /* In 2 MiB pages where the system allows, as the engine's workspace
     * (winograd_run) and U (transformed at prepare) are. */
    char *mem = aligned_alloc(WG_HUGE, bytes);
    if (!mem)
        return 0;
    (void)madvise(mem, bytes, MADV_HUGEPAGE);
    /* Small values whose products and sums stay normal in every format; the
     * FP16 chunk scales (after V) are 1. */
    const int half = g->bf16 || g->fp16;
    const size_t nu = half ? ubytes / 2 : ubytes / 4, nv = half ? WG_P * g->vstride : g->vfloats;
    for (size_t i = 0; i < nu; i++)
        wg_bench_put(g, mem, i, (float)(i % 5) * 0.0625f - 0.125f);
    for (size_t i = 0; i < nv; i++)
        wg_bench_put(g, mem + ubytes, i, (float)(i % 7) * 0.125f + 0.5f);
    j.u = half ? NULL : (const float *)mem;
    j.ub = half ? (const uint16_t *)mem : NULL;
    j.uscale = 1;
    j.f16emu = g->fp16 && wg_f16_emulated();
    j.v = (float *)(mem + ubytes);
    j.m = j.v + g->vfloats;
    if (g->fp16)
        for (size_t i = WG_P * g->vstride / 2; i < g->vfloats; i++)
            j.v[i] = 1;
    memset(j.m, 0, g->mfloats * sizeof(float));
    /* V[p + 1] prefetched by the tasks at p where the engine does it (V
     * written past the caches; one thread takes every task here) */
    j.private_blocks = wg_private(g, WG_PRIVATE);
    j.vstream = wg_vstream(g, j.private_blocks);
    wg_product_fn *product = prec == WG_AMX            ? wg_product_amx
                             : prec == WG_BF16         ? wg_product_bf16
                             : prec == WG_F16          ? wg_product_fp16
                             : isa == BN_WINOGRAD_AVX2 ? wg_product_avx2
                                                       : wg_product_avx512;
    const size_t cnt = g->tiles < g->tb ? g->tiles : g->tb;
    double best = 0;
    if (prec == WG_AMX)
        bn_amx_begin();
    for (int r = 0; r < reps; r++) {
        double rate = wg_bench_block(&j, product, cnt, same_position, seconds);
        best = rate > best ? rate : best;
    }
    if (prec == WG_AMX)
        bn_amx_end();
    free(mem);
    return best * (double)WG_P * cnt * g->cin * g->coutp / 1e9;
}

/* The transforms of one block, in each build of the engine (FP32). */
#define WG_BENCH_STEPS(NAME, ATTR, ISA)                                                            \
    static ATTR __attribute__((noinline)) void NAME(wg_job *j, size_t t0, size_t cnt, int out) {   \
        if (out)                                                                                   \
            wg_step_output(j, j->m, t0, 0, cnt, ISA);                                              \
        else                                                                                       \
            wg_step_input(j, j->v, t0, 0, cnt, cnt, WG_F32, ISA);                                  \
        if (j->stream || j->vstream)                                                               \
            wg_stream_fence();                                                                     \
    }
WG_BENCH_STEPS(wg_bench_steps_avx512, WG_AVX512, BN_WINOGRAD_AVX512)
WG_BENCH_STEPS(wg_bench_steps_avx2, WG_AVX2, BN_WINOGRAD_AVX2)
WG_BENCH_STEPS(wg_bench_steps_generic, , BN_WINOGRAD_PORTABLE)
#undef WG_BENCH_STEPS

int bn_conv_winograd_transforms_time(int cin, int cout, int n, int h, int w, int pool, int reps,
                                     double *input_s, double *output_s, double *edge_share) {
    if (cin < 1 || cout < 1 || n < 1 || h < 1 || w < 1 || (pool && (h % 2 || w % 2)))
        return BN_EINVAL;
    const bn_winograd_isa isa = bn_conv_winograd_isa();
    wg_job j;
    memset(&j, 0, sizeof j);
    wg_geometry(&j.g, cin, cout, n, h, w, pool, WG_F32, bn_cpu_caches());
    const wg_geom *g = &j.g;
    const size_t nin = (size_t)n * h * w * cin;
    const size_t nout = (size_t)n * (pool ? h / 2 : h) * (pool ? w / 2 : w) * cout;
    const size_t nws = g->vfloats + g->mfloats, pad = (size_t)(cout + 15) / 16 * 16;
    /* (aligned_alloc wants whole multiples of the alignment) */
    float *in = aligned_alloc(64, (nin + 16) / 16 * 16 * sizeof(float));
    float *out = aligned_alloc(64, (nout + 16) / 16 * 16 * sizeof(float));
    float *ws = aligned_alloc(64, (nws + 16) / 16 * 16 * sizeof(float));
    float *bias = calloc(pad, sizeof(float));
    if (!in || !out || !ws || !bias) {
        free(in), free(out), free(ws), free(bias);
        return BN_ENOMEM;
    }
    /* Small values, every page touched before the clock starts */
    for (size_t i = 0; i < nin; i++)
        in[i] = (float)(i % 13) * 0.125f - 0.75f;
    memset(out, 0, nout * sizeof(float));
    for (size_t i = 0; i < nws; i++)
        ws[i] = (float)(i % 7) * 0.125f - 0.375f;
    j.in = in;
    j.out = out;
    j.bias = bias;
    j.pool = pool;
    j.v = ws;
    j.m = ws + g->vfloats;
    /* As the engine runs the layer on a core pair, but on one thread, block
     * after block */
    j.private_blocks = wg_private(g, WG_PRIVATE);
    j.vstream = isa != BN_WINOGRAD_PORTABLE && wg_vstream(g, j.private_blocks);
    j.stream = isa != BN_WINOGRAD_PORTABLE && wg_stream_out(g, pool);
    void (*steps)(wg_job *, size_t, size_t, int) = isa == BN_WINOGRAD_AVX512 ? wg_bench_steps_avx512
                                                   : isa == BN_WINOGRAD_AVX2
                                                       ? wg_bench_steps_avx2
                                                       : wg_bench_steps_generic;
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < (reps > 0 ? reps : 1); r++)
        for (int out_step = 0; out_step < 2; out_step++) {
            double t = wg_now();
            for (size_t t0 = 0; t0 < g->tiles; t0 += g->tb)
                steps(&j, t0, g->tiles - t0 < g->tb ? g->tiles - t0 : g->tb, out_step);
            t = wg_now() - t;
            best[out_step] = t < best[out_step] ? t : best[out_step];
        }
    /* Tiles whose 8x8 input patch is not all inside the image: the input
     * transform's slower path, which loads pixel by pixel. */
    size_t edge = 0;
    for (size_t t = 0; t < g->tiles; t++) {
        size_t img;
        int y0, x0;
        wg_tile_origin(g, t, &img, &y0, &x0);
        edge += !wg_patch_fast(g, y0 - 1, x0 - 1);
    }
    *input_s = best[0];
    *output_s = best[1];
    *edge_share = (double)edge / (double)g->tiles;
    free(in), free(out), free(ws), free(bias);
    return BN_OK;
}

/* The matrices behind wg_G, wg_bt8 and wg_at8, for models of the engine's
 * arithmetic (bench/precision_model.c) and tests: written out once more here
 * because the engine's B^T and A^T live unrolled in code. test_winograd
 * checks that a transform through these matrices agrees with the engine. */
void bn_conv_winograd_matrices(double g[8][3], double bt[8][8], double at[6][8]) {
    static const double wg_BT[WG_N][WG_N] = {
        {1, 0, -21.0 / 4, 0, 21.0 / 4, 0, -1, 0},  {0, 1, 1, -17.0 / 4, -17.0 / 4, 1, 1, 0},
        {0, -1, 1, 17.0 / 4, -17.0 / 4, -1, 1, 0}, {0, 0.5, 0.25, -2.5, -1.25, 2, 1, 0},
        {0, -0.5, 0.25, 2.5, -1.25, -2, 1, 0},     {0, 2, 4, -2.5, -5, 0.5, 1, 0},
        {0, -2, 4, 2.5, -5, -0.5, 1, 0},           {0, -1, 0, 21.0 / 4, 0, -21.0 / 4, 0, 1},
    };
    static const double wg_AT[WG_M][WG_N] = {
        {1, 1, 1, 1, 1, 1, 1, 0},
        {0, 1, -1, 2, -2, 0.5, -0.5, 0},
        {0, 1, 1, 4, 4, 0.25, 0.25, 0},
        {0, 1, -1, 8, -8, 0.125, -0.125, 0},
        {0, 1, 1, 16, 16, 0.0625, 0.0625, 0},
        {0, 1, -1, 32, -32, 0.03125, -0.03125, 1},
    };
    memcpy(g, wg_G, sizeof wg_G);
    memcpy(bt, wg_BT, sizeof wg_BT);
    memcpy(at, wg_AT, sizeof wg_AT);
}
