/*
 * test_winograd_spec.c: the Winograd engine's arithmetic, operation by
 * operation, the same bytes on every CPU.
 *
 * A scalar model (below) computes a layer with exactly the operations the
 * engine performs, in the same order, one float at a time: U = G g G^T in
 * double rounded once; per tile the input transform B^T d B (rows, then
 * columns), per position the products summed over the input channels in
 * order from zero, the output transform A^T M A, the 2x2 max pool, + bias,
 * ReLU. Every multiply-add is written out: fused (fmaf, rounded once) as the
 * AVX2 and AVX-512 builds do it, or a product then a sum (rounded twice) as
 * the portable build must, CPUs without FMA having no other way. Each build
 * that runs here must give the model's bytes exactly (memcmp) at every
 * shape: edge tiles (sizes not multiples of 6), cin and cout not multiples
 * of the vector width, batches, the fused pool, private and shared blocks,
 * V written past the caches. So the AVX2 build on this host and the AVX-512
 * build on another compute the same numbers, bit for bit: an image gets the
 * same vector on any CPU with AVX2 and FMA or AVX-512 (engine id
 * "winograd", conv.h), and a test here fails if a compiler fuses an
 * operation the source does not (compiled with -ffp-contract=off, the model
 * itself cannot be fused behind its back).
 *
 * Inputs have full 24-bit mantissas (support_rnd): values of 16 bits or
 * fewer times the transforms' constants are exact, fused or not, and would
 * hide a difference.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double G[8][3], BT[8][8], AT[6][8]; /* G for U; BT, AT only to check the model */

/* a b + c as a build computes it: fused, or rounded after the product. */
static float mad(int fused, float a, float b, float c) {
    if (fused)
        return fmaf(a, b, c);
    float p = a * b;
    return p + c;
}

/* B^T d for 8 values, the engine's wg_bt8 (common/conv_winograd.c). */
static void bt8(int f, const float d[8], float v[8]) {
    float e1 = mad(f, -4.25f, d[4], d[2] + d[6]);
    float o1 = mad(f, -4.25f, d[3], d[1] + d[5]);
    float e2 = mad(f, -1.25f, d[4], mad(f, 0.25f, d[2], d[6]));
    float o2 = mad(f, 2.0f, d[5], mad(f, -2.5f, d[3], 0.5f * d[1]));
    float e3 = mad(f, -5.0f, d[4], mad(f, 4.0f, d[2], d[6]));
    float o3 = mad(f, 0.5f, d[5], mad(f, -2.5f, d[3], 2.0f * d[1]));
    v[0] = mad(f, 5.25f, d[4] - d[2], d[0] - d[6]);
    v[1] = e1 + o1;
    v[2] = e1 - o1;
    v[3] = e2 + o2;
    v[4] = e2 - o2;
    v[5] = e3 + o3;
    v[6] = e3 - o3;
    v[7] = mad(f, 5.25f, d[3] - d[5], d[7] - d[1]);
}

/* A^T m for 8 values -> 6, the engine's wg_at8. */
static void at8(int f, const float m[8], float y[6]) {
    float s1 = m[1] + m[2], t1 = m[1] - m[2];
    float s2 = m[3] + m[4], t2 = m[3] - m[4];
    float s3 = m[5] + m[6], t3 = m[5] - m[6];
    y[0] = m[0] + s1 + s2 + s3;
    y[1] = mad(f, 0.5f, t3, mad(f, 2.0f, t2, t1));
    y[2] = mad(f, 0.25f, s3, mad(f, 4.0f, s2, s1));
    y[3] = mad(f, 0.125f, t3, mad(f, 8.0f, t2, t1));
    y[4] = mad(f, 0.0625f, s3, mad(f, 16.0f, s2, s1));
    y[5] = mad(f, 0.03125f, t3, mad(f, 32.0f, t2, t1)) + m[7];
}

/* The engine's max (wg_max: a if a > b, else b) and ReLU (+0 unless > 0). */
static float max2(float a, float b) {
    return a > b ? a : b;
}
static float relu(float x) {
    return x > 0.0f ? x : 0.0f;
}

/* U (64, cin, cout) from the kernel (3, 3, cin, cout): the engine's
 * wg_transform_block, the same double operations in the same order. */
static float *model_u(const float *k, int cin, int cout) {
    float *u = malloc((size_t)64 * cin * cout * sizeof *u);
    for (int ci = 0; ci < cin; ci++)
        for (int co = 0; co < cout; co++) {
            double g[3][3], gt[8][3];
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++)
                    g[ky][kx] = k[((size_t)(ky * 3 + kx) * cin + ci) * cout + co];
            for (int a = 0; a < 8; a++)
                for (int kx = 0; kx < 3; kx++)
                    gt[a][kx] = G[a][0] * g[0][kx] + G[a][1] * g[1][kx] + G[a][2] * g[2][kx];
            for (int a = 0; a < 8; a++)
                for (int b = 0; b < 8; b++)
                    u[((size_t)(a * 8 + b) * cin + ci) * cout + co] =
                        (float)(gt[a][0] * G[b][0] + gt[a][1] * G[b][1] + gt[a][2] * G[b][2]);
        }
    return u;
}

/* The layer (n, h, w, cin) -> (n, h, w, cout), or pooled (n, h/2, w/2, cout),
 * as a build with fused (1) or unfused (0) multiply-adds computes it. */
static void model(int fused, const float *in, const float *u, const float *bias, float *out, int n,
                  int h, int w, int cin, int cout, int pool) {
    const int ty = (h + 5) / 6, tx = (w + 5) / 6, step = pool ? 2 : 1;
    const int oh = h / step, ow = w / step;
    float *v = malloc((size_t)64 * cin * sizeof *v);
    float *m = malloc((size_t)64 * cout * sizeof *m);
    for (int img = 0; img < n; img++)
        for (int t = 0; t < ty * tx; t++) {
            const int y0 = t / tx * 6, x0 = t % tx * 6;
            /* input transform: each row of the patch, then each column */
            for (int ci = 0; ci < cin; ci++) {
                float tr[8][8];
                for (int a = 0; a < 8; a++) {
                    float d[8];
                    for (int b = 0; b < 8; b++) {
                        int y = y0 - 1 + a, x = x0 - 1 + b;
                        d[b] = y >= 0 && y < h && x >= 0 && x < w
                                   ? in[(((size_t)img * h + y) * w + x) * cin + ci]
                                   : 0.0f;
                    }
                    bt8(fused, d, tr[a]);
                }
                for (int b = 0; b < 8; b++) {
                    float d[8], r[8];
                    for (int a = 0; a < 8; a++)
                        d[a] = tr[a][b];
                    bt8(fused, d, r);
                    for (int a = 0; a < 8; a++)
                        v[(size_t)(a * 8 + b) * cin + ci] = r[a];
                }
            }
            /* products: channels in order, from zero */
            for (int p = 0; p < 64; p++)
                for (int co = 0; co < cout; co++) {
                    float acc = 0.0f;
                    for (int ci = 0; ci < cin; ci++)
                        acc = mad(fused, v[(size_t)p * cin + ci],
                                  u[((size_t)p * cin + ci) * cout + co], acc);
                    m[(size_t)p * cout + co] = acc;
                }
            /* output transform, pool, bias, ReLU */
            for (int co = 0; co < cout; co++) {
                float tr[8][6];
                for (int a = 0; a < 8; a++) {
                    float r[8];
                    for (int b = 0; b < 8; b++)
                        r[b] = m[(size_t)(a * 8 + b) * cout + co];
                    at8(fused, r, tr[a]);
                }
                for (int b = 0; b < 6; b += step) {
                    float d[8], y[6], y1[6];
                    for (int a = 0; a < 8; a++)
                        d[a] = tr[a][b];
                    at8(fused, d, y);
                    if (pool) {
                        for (int a = 0; a < 8; a++)
                            d[a] = tr[a][b + 1];
                        at8(fused, d, y1);
                        for (int a = 0; a < 6; a++)
                            y[a] = max2(y[a], y1[a]);
                        for (int a = 0; a < 3; a++)
                            y[a] = max2(y[2 * a], y[2 * a + 1]);
                    }
                    for (int a = 0; a < 6 / step; a++) {
                        int oy = y0 / step + a, ox = x0 / step + b / step;
                        if (oy < oh && ox < ow)
                            out[(((size_t)img * oh + oy) * ow + ox) * cout + co] =
                                relu(y[a] + bias[co]);
                    }
                }
            }
        }
    free(v);
    free(m);
}

/* The builds, whether they fuse, and how a test asks for each
 * (BN_WINOGRAD_ISA; the best this CPU runs when unset): a build runs here
 * when asking for it gives it. */
static const struct {
    const char *name, *env;
    bn_winograd_isa isa;
    int fused;
} builds[] = {
    {"avx512", NULL, BN_WINOGRAD_AVX512, 1},
    {"avx2", "avx2", BN_WINOGRAD_AVX2, 1},
    {"portable", "portable", BN_WINOGRAD_PORTABLE, 0},
};
static int ran[3];

/* One shape: every build here against the model, byte for byte. */
static void check_shape(int n, int h, int w, int cin, int cout, int pool, int positive) {
    const size_t nin = (size_t)n * h * w * cin;
    const size_t nout = (size_t)n * (pool ? h / 2 : h) * (pool ? w / 2 : w) * cout;
    float *in = malloc(nin * sizeof *in), *k = malloc((size_t)9 * cin * cout * sizeof *k);
    float *bias = malloc((size_t)cout * sizeof *bias);
    const float ks = sqrtf(2.0f / (9.0f * cin));
    for (size_t i = 0; i < nin; i++)
        in[i] = positive ? fabsf(support_rnd()) : support_rnd();
    for (size_t i = 0; i < (size_t)9 * cin * cout; i++)
        k[i] = support_rnd() * ks;
    for (int i = 0; i < cout; i++)
        bias[i] = 0.1f * support_rnd();
    float *u = model_u(k, cin, cout);
    float *want[2] = {NULL, NULL}, *got = malloc(nout * sizeof *got);
    for (size_t b = 0; b < sizeof builds / sizeof builds[0]; b++) {
        if (builds[b].env)
            setenv("BN_WINOGRAD_ISA", builds[b].env, 1);
        else
            unsetenv("BN_WINOGRAD_ISA");
        if (bn_conv_winograd_isa() != builds[b].isa)
            continue; /* not on this CPU */
        const int f = builds[b].fused;
        if (!want[f]) {
            want[f] = malloc(nout * sizeof *want[f]);
            model(f, in, u, bias, want[f], n, h, w, cin, cout, pool);
        }
        bn_conv *c;
        bn_error err;
        if (bn_conv_create(&c, BN_CONV_WINOGRAD, cin, cout, k, bias, &err) != BN_OK) {
            CHECK_MSG(0, "%s", err.msg);
            continue;
        }
        bn_cpu_set_threads(2);
        memset(got, 0xff, nout * sizeof *got); /* NaN: an output never written shows */
        support_conv_forward(c, in, got, n, h, w, pool);
        bn_conv_free(c);
        size_t differ = 0, first = 0;
        for (size_t i = 0; i < nout; i++)
            if (memcmp(&got[i], &want[f][i], sizeof got[i]) != 0 && differ++ == 0)
                first = i;
        CHECK_MSG(differ == 0,
                  "%s build, n%d %dx%d %d->%d%s: %zu of %zu outputs differ from the %s model "
                  "(first at %zu: %.9g, model %.9g)",
                  builds[b].name, n, h, w, cin, cout, pool ? " pool" : "", differ, nout,
                  f ? "fused" : "unfused", first, got[first], want[f][first]);
        ran[b]++;
    }
    unsetenv("BN_WINOGRAD_ISA");
    /* Fused and unfused must differ somewhere, or the shape tests nothing. */
    if (want[0] && want[1])
        CHECK_MSG(memcmp(want[0], want[1], nout * sizeof *got) != 0,
                  "n%d %dx%d %d->%d: the fused and unfused models agree", n, h, w, cin, cout);
    free(want[0]);
    free(want[1]);
    free(got);
    free(u);
    free(in);
    free(k);
    free(bias);
}

/* The model's transforms are the matrices' (bn_conv_winograd_matrices): a
 * typo in a copied constant would otherwise pass as the engine's own. */
static void check_model_matrices(void) {
    float d[8], v[8], y[6];
    for (int i = 0; i < 8; i++)
        d[i] = support_rnd();
    bt8(1, d, v);
    at8(1, d, y);
    for (int r = 0; r < 8; r++) {
        double s = 0, a = 0;
        for (int c = 0; c < 8; c++)
            s += BT[r][c] * d[c], a += fabs(BT[r][c] * d[c]);
        CHECK_MSG(fabs(v[r] - s) <= 1e-6 * a, "model B^T row %d: %.9g, matrix %.9g", r, v[r], s);
    }
    for (int r = 0; r < 6; r++) {
        double s = 0, a = 0;
        for (int c = 0; c < 8; c++)
            s += AT[r][c] * d[c], a += fabs(AT[r][c] * d[c]);
        CHECK_MSG(fabs(y[r] - s) <= 1e-6 * a, "model A^T row %d: %.9g, matrix %.9g", r, y[r], s);
    }
}

int main(int argc, char **argv) {
    CHECK(support_use_fast_blas(argv) == 0);
    (void)argc;
    bn_conv_winograd_matrices(G, BT, AT);
    check_model_matrices();
    check_shape(1, 6, 6, 16, 32, 0, 0);     /* one whole tile */
    check_shape(1, 7, 5, 16, 32, 0, 0);     /* overhanging tiles: the edge paths */
    check_shape(2, 13, 19, 32, 64, 0, 1);   /* batch, not multiples of 6 */
    check_shape(1, 8, 8, 3, 64, 0, 0);      /* cin 3 (VGG16's first layer, --conv winograd) */
    check_shape(2, 9, 10, 48, 20, 0, 1);    /* cout not a multiple of 16 */
    check_shape(1, 12, 30, 16, 32, 0, 1);   /* 10 tiles: the AVX2 kernel's row groups */
    check_shape(2, 14, 10, 32, 64, 1, 1);   /* fused pool, overhang */
    check_shape(1, 24, 20, 3, 40, 1, 0);    /* pool, cin and cout not multiples of 16 */
    check_shape(2, 36, 36, 64, 64, 0, 1);   /* many blocks: private blocks */
    check_shape(2, 14, 14, 256, 256, 1, 1); /* U of 16 MB: shared blocks, V past the caches */
    check_shape(1, 28, 28, 128, 96, 0, 1);  /* block4-like, 3 output blocks */
    int any = 0;
    for (size_t b = 0; b < sizeof builds / sizeof builds[0]; b++) {
        printf("%s build: %d shapes, the same bytes as the %s model\n", builds[b].name, ran[b],
               builds[b].fused ? "fused" : "unfused");
        any += builds[b].isa != BN_WINOGRAD_PORTABLE && ran[b] > 0;
    }
    /* On x86-64 with AVX2 (every host of this project), a fused build ran. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK(any > 0);
    CHECK(ran[2] > 0);
    return check_done();
}
