/*
 * precision_model.c: Winograd F(m x m, 3x3) in reduced precisions, modelled
 * in plain C, so that a format or a tile size can be judged before (or
 * without) the hardware or the code that runs it: FP16 products need
 * avx512_fp16, which the hosts this was first written on did not have, and
 * the engine has only F(6x6) (issue 16).
 *
 *   precision_model --weights VGG16.h5 [--chunks 4,8,16,32] [--tile M] [--chain] INPUT.f32 ...
 *
 * INPUT.f32: one preprocessed image, 224 x 224 x 3 float32 NHWC (caffe
 * preprocessing, e.g. ../shared/reference/cat.1000.input.f32). For every
 * VGG16 convolution, on the exact engine's output of the layer before (so
 * errors do not compound), it computes the layer's output (before pooling):
 *
 *   exact          the direct engine (im2col + sgemm, FP32): the reference
 *   fp32-model     V, U and the sums in FP32: what the engine's FP32 path
 *                  would give with this tile
 *   bf16-model     V and U rounded to bfloat16 (nearest even), each output's
 *                  sum over input channels as vdpbf16ps does it: FP32
 *                  accumulator, two exact products added per step
 *   bf16-engine    the engine's own BF16 path (CPUs with avx512_bf16): checks
 *                  the model against the real thing
 *   fp16-engine    the engine's own FP16 path (avx512_fp16, or BN_FP16_EMULATE=1),
 *                  against exact and against the K = 32 model (its chunk)
 *   fp16-acc32     V and U rounded to binary16, sums in FP32 (storage only)
 *   fp16/K         V and U in binary16 and the sums as an avx512_fp16 kernel
 *                  would run them: an FP16 accumulator, each multiply-add
 *                  rounded once to binary16 (vfmadd231ph), widened into an
 *                  FP32 sum every K input channels
 *
 * and prints, per layer, the relative L2 of each against exact, the largest
 * |V|, |U| and FP16 partial sum, and how many values overflowed binary16's
 * range (65504). With --chain it also runs the whole network on the FP32
 * and the FP16 (K = 32, the engine's chunk) models' own outputs, so that
 * their errors compound as in a real forward pass, and prints their
 * relative L2 against exact after each pooling (CHAIN lines); with --tile
 * 6 and the FP16 engine, the engine's own FP16 forward pass beside them,
 * which checks the FP16 chain against the real thing.
 *
 * With --tile 6 (the default) the transforms use the engine's matrices
 * (bn_conv_winograd_matrices), and the engine's own paths are run beside
 * the models; other tiles (2, 4, 7, 8) use toom_cook.h's matrices, and only
 * the models run. B^T and A^T are applied in FP32, U computed in double and
 * rounded once, as the engine does. binary16 is scaled as the engine scales
 * it (winograd_fp16.h): U by a power of two per layer (largest |U| into
 * [1, 2)), V by one per tile and chunk of K input channels (largest |V|
 * into [256, 512)), undone exactly when a chunk's sum is widened. Needs
 * AVX-512 (the binary16 rounding is vcvtps2ph, vectorised over 16 output
 * channels); about a minute per image.
 */
#include "conv.h"
#include "cpu.h"
#include "error.h"
#include "toom_cook.h"
#include "verify.h"
#include "weights.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIZE 224
#define MAXCHUNKS 8

#define AVX512 __attribute__((target("avx512f,f16c,fma")))

/* The tile's matrices: G (N x 3), B^T (N x N), A^T (TM x N); N = TM + 2
 * transform positions per axis, P = N x N per tile. */
static toom_cook TC;
static int TM, N, P;

/* y = T x for the rows of T (`rows` of them), in float as the engine computes. */
static void apply(int rows, const double T[][TC_MAX_N], const float *x, float *y) {
    for (int i = 0; i < rows; i++) {
        float s = 0;
        for (int k = 0; k < N; k++)
            s += (float)T[i][k] * x[k];
        y[i] = s;
    }
}

static void bt(const float *d, float *v) {
    apply(N, TC.bt, d, v);
}

static void at(const float *m, float *y) {
    apply(TM, TC.at, m, y);
}

static float round_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    x += 0x7fffu + ((x >> 16) & 1);
    x &= 0xffff0000u;
    memcpy(&f, &x, 4);
    return f;
}

static AVX512 float round_f16(float f) {
    return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}

typedef enum { F_F32, F_BF16, F_F16_ACC32, F_F16_CHUNK } fmt;

typedef struct {
    double max_partial; /* FP16 accumulators */
    long overflows;     /* values past binary16's range (V, U or partial sums) */
} stats;

/* The products for one format: M[p][t][co] from V[p][t][ci] and U[p][ci][co]
 * (both already rounded to the format), cout a multiple of 16. F_F16_CHUNK:
 * V and U are scaled, and inv[t * nchunk + q] undoes both scales of tile t's
 * chunk q when its sum is widened. */
static AVX512 void products(fmt f, int chunk, const float *V, const float *U, const float *inv,
                            float *M, int tiles, int cin, int cout, stats *st) {
    const __m512 lim = _mm512_set1_ps(65504.0f);
    __m512 vmax = _mm512_setzero_ps();
    long over = 0;
    const int nchunk = chunk > 0 ? (cin + chunk - 1) / chunk : 0;
    for (int p = 0; p < P; p++)
        for (int t = 0; t < tiles; t++) {
            const float *v = V + ((size_t)p * tiles + t) * cin;
            float *m = M + ((size_t)p * tiles + t) * cout;
            for (int co = 0; co < cout; co += 16) {
                const float *u = U + (size_t)p * cin * cout + co;
                __m512 sum = _mm512_setzero_ps();
                if (f == F_BF16) {
                    /* vdpbf16ps: acc += a1*b1, then += a0*b0, each rounded to FP32 */
                    for (int ci = 0; ci < cin; ci += 2) {
                        if (ci + 1 < cin)
                            sum =
                                _mm512_fmadd_ps(_mm512_set1_ps(v[ci + 1]),
                                                _mm512_loadu_ps(u + (size_t)(ci + 1) * cout), sum);
                        sum = _mm512_fmadd_ps(_mm512_set1_ps(v[ci]),
                                              _mm512_loadu_ps(u + (size_t)ci * cout), sum);
                    }
                } else if (f == F_F32 || f == F_F16_ACC32) {
                    for (int ci = 0; ci < cin; ci++)
                        sum = _mm512_fmadd_ps(_mm512_set1_ps(v[ci]),
                                              _mm512_loadu_ps(u + (size_t)ci * cout), sum);
                } else {
                    /* The product of two binary16 is exact in FP32 (22 bits), so
                     * FP32 p + acc rounded to binary16 is vfmadd231ph's one rounding
                     * (up to a rare double rounding of a tie: negligible here). */
                    for (int c0 = 0; c0 < cin; c0 += chunk) {
                        __m512 acc = _mm512_setzero_ps();
                        int c1 = c0 + chunk < cin ? c0 + chunk : cin;
                        for (int ci = c0; ci < c1; ci++) {
                            __m512 s = _mm512_fmadd_ps(_mm512_set1_ps(v[ci]),
                                                       _mm512_loadu_ps(u + (size_t)ci * cout), acc);
                            acc = _mm512_cvtph_ps(_mm512_cvtps_ph(s, _MM_FROUND_TO_NEAREST_INT));
                            vmax = _mm512_max_ps(vmax, _mm512_abs_ps(acc));
                        }
                        over += __builtin_popcount(
                            _mm512_cmp_ps_mask(_mm512_abs_ps(acc), lim, _CMP_GT_OQ));
                        sum =
                            _mm512_fmadd_ps(acc, _mm512_set1_ps(inv[t * nchunk + c0 / chunk]), sum);
                    }
                }
                _mm512_storeu_ps(m + co, sum);
            }
        }
    float mx[16];
    _mm512_storeu_ps(mx, vmax);
    for (int i = 0; i < 16; i++)
        if (mx[i] > st->max_partial)
            st->max_partial = mx[i];
    st->overflows += over;
}

/* The whole model layer: in (h, w, cin) -> out (h, w, cout), before pooling. */
typedef struct {
    int h, w, cin, cout, coutp, ty, tx, tiles;
    float *V, *U, *Vq, *Uq, *M, *inv;
    double maxV, maxU;
} layer;

static void layer_init(layer *L, const float *in, const bn_conv_weights *cw, int h, int w) {
    L->h = h;
    L->w = w;
    L->cin = cw->cin;
    L->cout = cw->cout;
    L->coutp = (cw->cout + 15) / 16 * 16;
    L->ty = (h + TM - 1) / TM;
    L->tx = (w + TM - 1) / TM;
    L->tiles = L->ty * L->tx;
    size_t nv = (size_t)P * L->tiles * L->cin, nu = (size_t)P * L->cin * L->coutp;
    L->V = malloc(nv * 4);
    L->Vq = malloc(nv * 4);
    L->U = calloc(nu, 4);
    L->Uq = malloc(nu * 4);
    L->M = malloc((size_t)P * L->tiles * L->coutp * 4);
    L->inv = malloc((size_t)L->tiles * L->cin * 4);
    L->maxV = L->maxU = 0;
    /* V: patch at (TM ty - 1, TM tx - 1), zeros off the image */
    for (int t = 0; t < L->tiles; t++) {
        int y0 = t / L->tx * TM - 1, x0 = t % L->tx * TM - 1;
        for (int c = 0; c < L->cin; c++) {
            float d[TC_MAX_N][TC_MAX_N], r[TC_MAX_N][TC_MAX_N];
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) {
                    int y = y0 + a, x = x0 + b;
                    d[a][b] = y >= 0 && y < h && x >= 0 && x < w
                                  ? in[((size_t)y * w + x) * L->cin + c]
                                  : 0.0f;
                }
            for (int a = 0; a < N; a++)
                bt(d[a], r[a]); /* rows: r[a][j] = (B^T applied along b) */
            for (int b = 0; b < N; b++) {
                float col[TC_MAX_N], out[TC_MAX_N];
                for (int a = 0; a < N; a++)
                    col[a] = r[a][b];
                bt(col, out);
                for (int a = 0; a < N; a++) {
                    float v = out[a];
                    L->V[((size_t)(a * N + b) * L->tiles + t) * L->cin + c] = v;
                    if (fabs(v) > L->maxV)
                        L->maxV = fabs(v);
                }
            }
        }
    }
    /* U = G g G^T in double, rounded once to float */
    for (int ci = 0; ci < L->cin; ci++)
        for (int co = 0; co < L->cout; co++) {
            double g[3][3], gt[TC_MAX_N][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = cw->kernel[((size_t)(ky * 3 + kx) * L->cin + ci) * L->cout + co];
            const double(*G)[TC_MAX_N] = TC.g;
            for (int i = 0; i < N; i++)
                for (int kx = 0; kx < 3; kx++)
                    gt[i][kx] = G[i][0] * g[0][kx] + G[i][1] * g[1][kx] + G[i][2] * g[2][kx];
            for (int i = 0; i < N; i++)
                for (int j = 0; j < N; j++) {
                    float u = (float)(gt[i][0] * G[j][0] + gt[i][1] * G[j][1] + gt[i][2] * G[j][2]);
                    L->U[((size_t)(i * N + j) * L->cin + ci) * L->coutp + co] = u;
                    if (fabs(u) > L->maxU)
                        L->maxU = fabs(u);
                }
        }
}

static void layer_free(layer *L) {
    free(L->V);
    free(L->Vq);
    free(L->U);
    free(L->Uq);
    free(L->M);
    free(L->inv);
}

/* Output transform of M, + bias, ReLU, into out (h, w, cout). */
static void layer_output(const layer *L, const float *bias, float *out) {
    for (int t = 0; t < L->tiles; t++) {
        int y0 = t / L->tx * TM, x0 = t % L->tx * TM;
        for (int co = 0; co < L->cout; co++) {
            float r[TC_MAX_N][TC_MAX_N];
            for (int a = 0; a < N; a++) {
                float m[TC_MAX_N];
                for (int b = 0; b < N; b++)
                    m[b] = L->M[((size_t)(a * N + b) * L->tiles + t) * L->coutp + co];
                at(m, r[a]);
            }
            for (int b = 0; b < TM; b++) {
                float col[TC_MAX_N], y[TC_MAX_N];
                for (int a = 0; a < N; a++)
                    col[a] = r[a][b];
                at(col, y);
                for (int a = 0; a < TM; a++) {
                    int yy = y0 + a, xx = x0 + b;
                    if (yy < L->h && xx < L->w) {
                        float o = y[a] + bias[co];
                        out[((size_t)yy * L->w + xx) * L->cout + co] = o > 0 ? o : 0;
                    }
                }
            }
        }
    }
}

/* The power of two that brings x (> 0) into [2^e, 2^(e + 1)); 1 for 0. */
static float scale_into(double x, int e) {
    int k;
    if (x == 0)
        return 1;
    (void)frexp(x, &k); /* x in [2^(k - 1), 2^k) */
    return ldexpf(1.0f, e + 1 - k);
}

/* One model format on layer L: round V and U, products, output; rel L2 to ref. */
static double model_run(layer *L, fmt f, int chunk, const float *bias, const float *ref, float *out,
                        stats *st) {
    const size_t nu = (size_t)P * L->cin * L->coutp;
    const int f16 = f == F_F16_ACC32 || f == F_F16_CHUNK;
    /* binary16's scales, as the engine's (winograd_fp16.h): U's per layer,
     * V's per tile and chunk of `k` channels (the products' chunk) */
    const int k = f == F_F16_CHUNK ? chunk : 32, nchunk = (L->cin + k - 1) / k;
    float su = f16 ? scale_into(L->maxU, 0) : 1;
    for (size_t i = 0; i < nu; i++) {
        float u = L->U[i];
        L->Uq[i] = f == F_BF16 ? round_bf16(u) : f16 ? round_f16(u * su) : u;
    }
    for (int t = 0; t < L->tiles; t++)
        for (int q = 0; q < nchunk; q++) {
            int c0 = q * k, c1 = c0 + k < L->cin ? c0 + k : L->cin;
            double vmax = 0; /* binary16 only: the other formats are not scaled */
            for (int p = 0; f16 && p < P; p++)
                for (int c = c0; c < c1; c++)
                    vmax = fmax(vmax, fabs(L->V[((size_t)p * L->tiles + t) * L->cin + c]));
            float sv = f16 ? scale_into(vmax, 8) : 1;
            L->inv[t * nchunk + q] = 1.0f / (sv * su);
            for (int p = 0; p < P; p++)
                for (int c = c0; c < c1; c++) {
                    size_t i = ((size_t)p * L->tiles + t) * L->cin + c;
                    float v = L->V[i];
                    L->Vq[i] = f == F_BF16 ? round_bf16(v) : f16 ? round_f16(v * sv) : v;
                    if (f16 && isinf(L->Vq[i]))
                        st->overflows++;
                    /* FP32 sums of binary16 storage: the scales undone here */
                    if (f == F_F16_ACC32)
                        L->Vq[i] /= sv * su;
                }
        }
    products(f, chunk, L->Vq, L->Uq, L->inv, L->M, L->tiles, L->cin, L->coutp, st);
    layer_output(L, bias, out);
    return bn_verify_rel_l2(out, ref, (size_t)L->h * L->w * L->cout);
}

/* One layer of `engine`/`prec` on in (1, h, w, cin) into out; 0 on success. */
static int engine_run(bn_conv_engine engine, bn_precision prec, const bn_conv_weights *cw,
                      const float *in, float *out, int h, int w, int pool) {
    bn_conv *c;
    bn_error err;
    if (bn_conv_create_precision(&c, engine, prec, cw->cin, cw->cout, cw->kernel, cw->bias, &err)) {
        fprintf(stderr, "precision_model: %s\n", err.msg);
        return 1;
    }
    size_t ws = pool ? bn_conv_workspace_pool(c, 1, h, w) : bn_conv_workspace(c, 1, h, w);
    void *work = aligned_alloc(64, (ws + 63) / 64 * 64 + 64);
    if (pool)
        bn_conv_forward_pool(c, in, out, 1, h, w, work);
    else
        bn_conv_forward(c, in, out, 1, h, w, work);
    free(work);
    bn_conv_free(c);
    return 0;
}

int main(int argc, char **argv) {
    static const char usage[] = "usage: precision_model --weights VGG16.h5 [--chunks 4,8,...] "
                                "[--tile 2|4|6|7|8] [--chain] INPUT.f32 ...\n";
    const char *weights = NULL;
    int chunks[MAXCHUNKS] = {4, 8, 16, 32, 64}, nchunks = 5, nfiles = 0, tile = 6, chain = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights") && i + 1 < argc)
            weights = argv[++i];
        else if (!strcmp(argv[i], "--chunks") && i + 1 < argc) {
            nchunks = 0;
            for (char *s = strtok(argv[++i], ","); s && nchunks < MAXCHUNKS; s = strtok(NULL, ","))
                chunks[nchunks++] = atoi(s) > 0 ? atoi(s) : 1;
        } else if (!strcmp(argv[i], "--tile") && i + 1 < argc)
            tile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chain"))
            chain = 1;
        else if (argv[i][0] == '-') {
            fputs(usage, stderr);
            return 2;
        } else
            files[nfiles++] = argv[i];
    }
    if (!weights || nfiles == 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (!toom_cook_points(tile)) {
        fprintf(stderr, "precision_model: --tile %d: no points for that tile (2, 4, 6, 7, 8)\n",
                tile);
        return 2;
    }
    if (!bn_cpu_features_get()->avx512) {
        fprintf(stderr, "precision_model: needs AVX-512 (binary16 rounding by vcvtps2ph)\n");
        return 2;
    }
    if (tile == 6) { /* the engine's own */
        double g[8][3], b[8][8], a[6][8];
        bn_conv_winograd_matrices(g, b, a);
        TC.m = 6;
        TC.r = 3;
        TC.n = 8;
        for (int i = 0; i < 8; i++) {
            memcpy(TC.g[i], g[i], sizeof g[i]);
            memcpy(TC.bt[i], b[i], sizeof b[i]);
            if (i < 6)
                memcpy(TC.at[i], a[i], sizeof a[i]);
        }
    } else if (toom_cook_make(&TC, tile, 3, toom_cook_points(tile))) {
        fprintf(stderr, "precision_model: --tile %d: its matrices are not exact\n", tile);
        return 1;
    }
    TM = TC.m;
    N = TC.n;
    P = N * N;
    bn_vgg16_weights wt;
    bn_error err;
    if (bn_weights_load(&wt, weights, &err)) {
        fprintf(stderr, "precision_model: %s\n", err.msg);
        return 1;
    }
    /* the engine's paths, beside the models of its own tile only */
    int have_bf16 = tile == 6 && bn_conv_winograd_has_precision(BN_PRECISION_BF16);
    /* the FP16 engine: avx512_fp16, or its software products (BN_FP16_EMULATE=1) */
    int have_fp16 = tile == 6 && bn_conv_winograd_has_precision(BN_PRECISION_FP16);
    size_t maxn = (size_t)SIZE * SIZE * 64;
    float *act = malloc(maxn * 4 * 2), *next = malloc(maxn * 4 * 2), *ref = malloc(maxn * 4 * 2),
          *out = malloc(maxn * 4 * 2);
    /* --chain: the FP32 and FP16 models' own activations, and the FP16
     * engine's */
    float *cact[3] = {malloc(maxn * 4 * 2), malloc(maxn * 4 * 2), malloc(maxn * 4 * 2)};
    for (int fi = 0; fi < nfiles; fi++) {
        FILE *f = fopen(files[fi], "rb");
        size_t want = (size_t)SIZE * SIZE * 3;
        if (!f || fread(act, 4, want, f) != want) {
            fprintf(stderr, "precision_model: %s: not a %dx%dx3 float32 image\n", files[fi], SIZE,
                    SIZE);
            return 1;
        }
        fclose(f);
        printf("IMAGE %s\n", files[fi]);
        int h = SIZE, w = SIZE, npool = 0;
        for (int c = 0; c < 3; c++)
            memcpy(cact[c], act, (size_t)SIZE * SIZE * 3 * 4);
        for (int l = 0; l < BN_VGG16_NCONV; l++) {
            const bn_conv_weights *cw = &wt.conv[l];
            int pool = l == 1 || l == 3 || l == 6 || l == 9 || l == 12;
            size_t nout = (size_t)h * w * cw->cout;
            if (engine_run(BN_CONV_DIRECT, BN_PRECISION_FP32, cw, act, ref, h, w, 0))
                return 1;
            layer L;
            layer_init(&L, act, cw, h, w);
            printf("LAYER %s cin=%d cout=%d tile=%d tiles=%d positions=%d max_V=%.4g max_U=%.4g",
                   bn_vgg16_convs[l].name, cw->cin, cw->cout, TM, L.tiles, L.tiles * P, L.maxV,
                   L.maxU);
            stats st = {0, 0};
            printf(" fp32_model=%.3e", model_run(&L, F_F32, 0, cw->bias, ref, out, &st));
            printf(" bf16_model=%.3e", model_run(&L, F_BF16, 0, cw->bias, ref, out, &st));
            if (have_bf16) {
                if (engine_run(BN_CONV_WINOGRAD, BN_PRECISION_BF16, cw, act, next, h, w, 0))
                    return 1;
                printf(" bf16_engine=%.3e model_vs_engine=%.3e", bn_verify_rel_l2(next, ref, nout),
                       bn_verify_rel_l2(out, next, nout));
            }
            if (have_fp16) {
                if (engine_run(BN_CONV_WINOGRAD, BN_PRECISION_FP16, cw, act, next, h, w, 0))
                    return 1;
                st = (stats){0, 0};
                (void)model_run(&L, F_F16_CHUNK, 32, cw->bias, ref, out, &st);
                printf(" fp16_engine=%.3e model_k32_vs_engine=%.3e",
                       bn_verify_rel_l2(next, ref, nout), bn_verify_rel_l2(out, next, nout));
            }
            st = (stats){0, 0};
            printf(" fp16_acc32=%.3e", model_run(&L, F_F16_ACC32, 0, cw->bias, ref, out, &st));
            for (int k = 0; k < nchunks; k++) {
                st = (stats){0, 0};
                double r = model_run(&L, F_F16_CHUNK, chunks[k], cw->bias, ref, out, &st);
                printf(" fp16_k%d=%.3e", chunks[k], r);
                if (k == nchunks - 1)
                    printf(" max_partial_k%d=%.4g overflows=%ld", chunks[k], st.max_partial,
                           st.overflows);
            }
            printf("\n");
            fflush(stdout);
            layer_free(&L);
            for (int c = 0; chain && c < 2 + have_fp16; c++) {
                if (c == 2) {
                    if (engine_run(BN_CONV_WINOGRAD, BN_PRECISION_FP16, cw, cact[c], out, h, w, 0))
                        return 1;
                } else {
                    layer C;
                    layer_init(&C, cact[c], cw, h, w);
                    stats sc = {0, 0};
                    (void)model_run(&C, c == 0 ? F_F32 : F_F16_CHUNK, c == 0 ? 0 : 32, cw->bias,
                                    ref, out, &sc);
                    layer_free(&C);
                }
                if (pool)
                    bn_conv_maxpool2x2(out, cact[c], 1, h, w, cw->cout);
                else
                    memcpy(cact[c], out, nout * 4);
            }
            /* the next layer's input: the exact engine's (pooled) output */
            if (pool) {
                bn_conv_maxpool2x2(ref, next, 1, h, w, cw->cout);
                h /= 2;
                w /= 2;
            } else
                memcpy(next, ref, nout * 4);
            float *tmp = act;
            act = next;
            next = tmp;
            if (chain && pool) {
                size_t n = (size_t)h * w * cw->cout;
                printf("CHAIN block%d_pool fp32_model=%.3e fp16_k32=%.3e", ++npool,
                       bn_verify_rel_l2(cact[0], act, n), bn_verify_rel_l2(cact[1], act, n));
                if (have_fp16)
                    printf(" fp16_engine=%.3e fp16_k32_vs_engine=%.3e",
                           bn_verify_rel_l2(cact[2], act, n),
                           bn_verify_rel_l2(cact[1], cact[2], n));
                printf("\n");
                fflush(stdout);
            }
        }
    }
    bn_weights_free(&wt);
    free(act);
    free(next);
    free(ref);
    free(out);
    for (int c = 0; c < 3; c++)
        free(cact[c]);
    free(files);
    return 0;
}
