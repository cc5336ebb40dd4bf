/*
 * test_winograd_caches.c: the Winograd engine's blocks follow the caches,
 * and its bytes never do.
 *
 * wg_geometry() sizes the blocks of tiles, chooses private or shared blocks
 * and decides which writes go past the caches from bn_cpu_caches(). Four
 * cache configurations are forced (bn_cpu_caches_force): this host (AMD EPYC:
 * L2 1M, L3 32M for 2 CPUs), an Intel Xeon (Sapphire Rapids: L2 2M, L3 105M
 * shared by 56 cores), a tiny machine (L2 256K, L3 4M) and a huge one (L2 8M,
 * L3 512M).
 *
 * 1. The plans: with this host's caches, every VGG16 layer at 224 and every
 *    batch 1..9 gets exactly the plan of the compile-time constants the
 *    engine had before (the rule of main at 168d104 is written out below);
 *    the other configurations give other plans (the geometry does change);
 *    a large U that the Intel share cannot hold gets blocks as large as U,
 *    at most 64 MiB (a 1024-channel layer).
 * 2. The bytes: VGG16's eight layer shapes (random weights, small images
 *    whose sides are not multiples of the 6x6 tile, pooled and not) and the
 *    real 224x224 first layer, at batch 1, 6, 7, 8 and 9, with 1 and 2
 *    threads, in FP32 and in BF16 (when the CPU has avx512_bf16), under each
 *    configuration: outputs memcmp-equal to those of the first configuration
 *    with one thread. Block sizes change only the grouping of tiles, never
 *    the order of any sum. The test also checks that, for each shape, the
 *    configurations did produce different tile counts per block, so the
 *    equality is not vacuous; and one shape again in the portable build.
 */
#include "check.h"
#include "conv.h"
#include "cpu.h"
#include "precision.h"
#include "support.h"

#define K ((size_t)1 << 10)
#define M ((size_t)1 << 20)

typedef struct {
    const char *name;
    bn_cpu_cache_sizes c;
} config;

static const config configs[] = {
    {"amd-epyc", {.l1d = 48 * K, .l2 = 1 * M, .l3 = 32 * M, .l3_cpus = 2, .line = 64}},
    {"intel-spr", {.l1d = 48 * K, .l2 = 2 * M, .l3 = 105 * M, .l3_cpus = 56, .line = 64}},
    {"tiny", {.l1d = 32 * K, .l2 = 256 * K, .l3 = 4 * M, .l3_cpus = 2, .line = 64}},
    {"huge", {.l1d = 64 * K, .l2 = 8 * M, .l3 = 512 * M, .l3_cpus = 2, .line = 64}},
};
#define NCONFIG (int)(sizeof configs / sizeof *configs)

/* The plan main's constants gave (conv_winograd.c at 168d104: WG_SMALL_U 4M,
 * WG_L2_BYTES 1M, WG_BLOCK_BYTES 8M, WG_LARGE_U 24M, WG_LARGE_BLOCK_BYTES
 * 32M, WG_PRIVATE_U 4M, WG_STREAM_BYTES 32M), for the comparison; plus the
 * one rule added since that changes plans on that host: when the L2 holds U
 * beside a block of min_tb tiles, V + M get what U leaves (cin 3 only). */
static void old_plan(int cin, int cout, int n, int h, int w, int pool, int bf16, int threads,
                     bn_conv_winograd_plan *p) {
    size_t cinp = (size_t)(bf16 ? (cin + 31) / 32 * 32 : (cin + 15) / 16 * 16);
    size_t coutp = (size_t)(cout + 31) / 32 * 32;
    size_t tiles = (size_t)n * ((h + 5) / 6) * ((w + 5) / 6);
    size_t per_tile = 64 * (cinp + coutp) * 4, ubytes = 64 * cinp * coutp * 4;
    size_t budget = ubytes <= 4 * M ? 1 * M : ubytes <= 24 * M ? 8 * M : 32 * M;
    size_t uheld = bf16 ? ubytes / 2 : ubytes, min_tb = (ubytes <= 4 * M ? 2 : 4) * 14;
    int u_in_l2 = ubytes <= 4 * M && uheld + min_tb * per_tile <= 1 * M;
    if (u_in_l2)
        budget = 1 * M - uheld;
    size_t tb = budget / per_tile;
    tb = tb < min_tb ? min_tb : tb;
    if (u_in_l2)
        tb = tb / 14 * 14;
    size_t nblocks = u_in_l2 ? (tiles + tb - 1) / tb : (tiles + tb / 2) / tb;
    nblocks = nblocks < 1 ? 1 : nblocks;
    tb = (tiles + nblocks - 1) / nblocks;
    tb = (tb + 13) / 14 * 14;
    tb = tb > tiles ? tiles : tb;
    p->tb = tb;
    p->private_blocks = ubytes <= 4 * M && (tiles + tb - 1) / tb >= 4 && threads <= 2;
    p->vstream = !p->private_blocks || (bf16 ? ubytes / 2 : ubytes) > 1 * M;
    size_t out_bytes = (size_t)n * (pool ? (h / 2) * (w / 2) : h * w) * cout * 4;
    p->stream = out_bytes > 32 * M && cout % 16 == 0;
}

static const int vgg[13][3] = {/* cin, cout, size at 224 */
                               {3, 64, 224},   {64, 64, 224},  {64, 128, 112}, {128, 128, 112},
                               {128, 256, 56}, {256, 256, 56}, {256, 256, 56}, {256, 512, 28},
                               {512, 512, 28}, {512, 512, 28}, {512, 512, 14}, {512, 512, 14},
                               {512, 512, 14}};
static const int vgg_pool[13] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};

static void test_plans(void) {
    int differ[NCONFIG] = {0};
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int i = 0; i < 13; i++)
            for (int n = 1; n <= 9; n++)
                for (int threads = 1; threads <= 2; threads++) {
                    int cin = vgg[i][0], cout = vgg[i][1], s = vgg[i][2], pool = vgg_pool[i];
                    bn_conv_winograd_plan want, got[NCONFIG];
                    old_plan(cin, cout, n, s, s, pool, bf16, threads, &want);
                    for (int c = 0; c < NCONFIG; c++)
                        bn_conv_winograd_plan_for(cin, cout, n, s, s, pool,
                                                  bf16 ? BN_PRECISION_BF16 : BN_PRECISION_FP32,
                                                  threads, &configs[c].c, &got[c]);
                    const bn_conv_winograd_plan *h = &got[0];
                    CHECK_MSG(h->tb == want.tb && h->private_blocks == want.private_blocks &&
                                  h->vstream == want.vstream && h->stream == want.stream,
                              "layer %d n %d threads %d bf16 %d: tb %zu/%zu private %d/%d "
                              "vstream %d/%d stream %d/%d",
                              i, n, threads, bf16, h->tb, want.tb, h->private_blocks,
                              want.private_blocks, h->vstream, want.vstream, h->stream,
                              want.stream);
                    for (int c = 1; c < NCONFIG; c++)
                        differ[c] += got[c].tb != h->tb ||
                                     got[c].private_blocks != h->private_blocks ||
                                     got[c].vstream != h->vstream || got[c].stream != h->stream;
                }
    /* The plans at 224, batch 8, 2 threads, FP32, as docs/PERFORMANCE.md shows them. */
    for (int c = 0; c < NCONFIG; c++) {
        printf("%-9s", configs[c].name);
        for (int i = 0; i < 13; i++) {
            bn_conv_winograd_plan p;
            bn_conv_winograd_plan_for(vgg[i][0], vgg[i][1], 8, vgg[i][2], vgg[i][2], vgg_pool[i],
                                      BN_PRECISION_FP32, 2, &configs[c].c, &p);
            printf(" %s/%zu%s", p.rule, p.tb, p.private_blocks ? "p" : "s");
        }
        printf("\n");
    }
    for (int c = 1; c < NCONFIG; c++) {
        printf("%s: %d of 468 plans differ from the host's\n", configs[c].name, differ[c]);
        CHECK_MSG(differ[c] > 20, "%s: only %d plans differ", configs[c].name, differ[c]);
    }
    /* Specific consequences of the rules. Intel: block3 (U 8-16M) no longer
     * stays in 2 x 1.9M of L3, so it is "large"; its 2M L2 makes block3_conv1
     * (U 8M = 4 x L2) private. Tiny: block2_conv2 (U 4M > 4 x 256K) shared. */
    bn_conv_winograd_plan p;
    bn_conv_winograd_plan_for(256, 256, 8, 56, 56, 0, BN_PRECISION_FP32, 2, &configs[1].c, &p);
    CHECK(!strcmp(p.rule, "large"));
    bn_conv_winograd_plan_for(128, 256, 8, 56, 56, 0, BN_PRECISION_FP32, 2, &configs[1].c, &p);
    CHECK(!strcmp(p.rule, "l2") && p.private_blocks);
    bn_conv_winograd_plan_for(128, 128, 8, 112, 112, 1, BN_PRECISION_FP32, 2, &configs[2].c, &p);
    CHECK(!strcmp(p.rule, "large") && !p.private_blocks);
    /* A large U that the share cannot hold with even 56 tiles: blocks as
     * large as U (block4_conv2's 67 MB U: its 200 tiles in one block), and
     * never over 64 MiB for wider layers (1024 channels: U 268 MB). The
     * AMD share holds 128 tiles of block4: its two blocks stay. */
    bn_conv_winograd_plan_for(512, 512, 8, 28, 28, 0, BN_PRECISION_FP32, 2, &configs[1].c, &p);
    CHECK_MSG(!strcmp(p.rule, "large") && p.tb == 200 && p.blocks == 1, "%s %zu %zu", p.rule, p.tb,
              p.blocks);
    bn_conv_winograd_plan_for(1024, 1024, 8, 28, 28, 0, BN_PRECISION_FP32, 2, &configs[1].c, &p);
    CHECK_MSG(!strcmp(p.rule, "large") && p.blocks >= 2 && p.block_bytes <= ((size_t)64 << 20),
              "%s %zu blocks of %zu bytes", p.rule, p.blocks, p.block_bytes);
    bn_conv_winograd_plan_for(512, 512, 8, 28, 28, 0, BN_PRECISION_FP32, 2, &configs[0].c, &p);
    CHECK_MSG(!strcmp(p.rule, "large") && p.tb == 112 && p.blocks == 2, "%s %zu %zu", p.rule, p.tb,
              p.blocks);
    /* Intel: block1_conv2's U (1 MiB, 0.5 in FP16) stays in the 2 MiB L2
     * beside blocks of 28 tiles (42 in FP16), not rounded up past it; the
     * blocks' V + M and U then fit the L2. */
    for (int fp16 = 0; fp16 <= 1; fp16++) {
        bn_conv_winograd_plan_for(64, 64, 8, 224, 224, 1,
                                  fp16 ? BN_PRECISION_FP16 : BN_PRECISION_FP32, 2, &configs[1].c,
                                  &p);
        size_t u = (size_t)64 * 64 * 64 * (fp16 ? 2 : 4), per_tile = (size_t)64 * 128 * 4;
        CHECK_MSG(!strcmp(p.rule, "l2") && p.tb == (fp16 ? 42u : 28u) && p.private_blocks &&
                      p.tb * per_tile + u <= configs[1].c.l2,
                  "fp16 %d: %s tb %zu", fp16, p.rule, p.tb);
    }
}

/* One layer shape of the bytes test. */
typedef struct {
    int cin, cout, h, w, pool;
} shape;

static float *xalloc(size_t n) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Run conv c under every configuration, batch and thread count; compare
 * with the first configuration at one thread. Returns how many distinct tb
 * values the configurations gave at the largest batch. */
static int bytes_one(bn_conv *c, const shape *s, const float *in, const int *batches, int nbatch,
                     const char *what) {
    int oh = s->pool ? s->h / 2 : s->h, ow = s->pool ? s->w / 2 : s->w;
    int nmax = batches[nbatch - 1];
    size_t nout = (size_t)nmax * oh * ow * s->cout;
    float *ref = xalloc(nout), *out = xalloc(nout);
    size_t tbs[NCONFIG];
    int bf16 = bn_conv_precision_of(c) == BN_PRECISION_BF16;
    for (int b = 0; b < nbatch; b++) {
        int n = batches[b];
        size_t count = (size_t)n * oh * ow * s->cout;
        for (int threads = 1; threads <= 2; threads++)
            for (int k = 0; k < NCONFIG; k++) {
                bn_cpu_set_threads(threads);
                bn_cpu_caches_force(&configs[k].c);
                size_t wsb = s->pool ? bn_conv_workspace_pool(c, n, s->h, s->w)
                                     : bn_conv_workspace(c, n, s->h, s->w);
                void *ws = support_ws_alloc(wsb);
                float *dst = threads == 1 && k == 0 ? ref : out;
                memset(dst, 0xff, count * sizeof(float)); /* NaN: every byte must be written */
                if (s->pool)
                    bn_conv_forward_pool(c, in, dst, n, s->h, s->w, ws);
                else
                    bn_conv_forward(c, in, dst, n, s->h, s->w, ws);
                free(ws);
                bn_conv_winograd_plan p;
                bn_conv_winograd_plan_for(s->cin, s->cout, n, s->h, s->w, s->pool,
                                          bf16 ? BN_PRECISION_BF16 : BN_PRECISION_FP32, threads,
                                          &configs[k].c, &p);
                if (n == nmax)
                    tbs[k] = p.tb;
                if (dst == ref)
                    continue;
                CHECK_MSG(memcmp(out, ref, count * sizeof(float)) == 0,
                          "%s %d->%d %dx%d%s n %d threads %d %s (tb %zu %s): bytes differ", what,
                          s->cin, s->cout, s->h, s->w, s->pool ? " pool" : "", n, threads,
                          configs[k].name, p.tb, p.private_blocks ? "private" : "shared");
            }
    }
    bn_cpu_caches_force(NULL);
    int distinct = 0;
    for (int k = 0; k < NCONFIG; k++) {
        int seen = 0;
        for (int j = 0; j < k; j++)
            seen |= tbs[j] == tbs[k];
        distinct += !seen;
    }
    printf("%s %4d->%-4d %3dx%-3d%s: batches up to %d, %d distinct tb at batch %d (%zu %zu %zu "
           "%zu)\n",
           what, s->cin, s->cout, s->h, s->w, s->pool ? " pool" : "     ", nmax, distinct, nmax,
           tbs[0], tbs[1], tbs[2], tbs[3]);
    free(ref);
    free(out);
    return distinct;
}

static void test_bytes(bn_precision prec) {
    static const shape shapes[] = {
        {3, 64, 50, 44, 0},    {64, 64, 50, 44, 1},   {64, 128, 38, 30, 0},
        {128, 128, 38, 30, 1}, {128, 256, 26, 26, 0}, {256, 256, 32, 26, 1},
        {256, 512, 20, 14, 0}, {512, 512, 32, 26, 1}, {3, 64, 224, 224, 0},
    };
    static const int batches[] = {1, 6, 7, 8, 9}, batches224[] = {1, 8};
    const char *what = bn_precision_name(prec);
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        const shape *s = &shapes[i];
        int real224 = s->h == 224;
        const int *b = real224 ? batches224 : batches;
        int nb = real224 ? 2 : 5, nmax = b[nb - 1];
        size_t nin = (size_t)nmax * s->h * s->w * s->cin, nk = (size_t)9 * s->cin * s->cout;
        float *in = xalloc(nin), *k = xalloc(nk), *bias = xalloc((size_t)s->cout);
        support_seed(1000 + i);
        for (size_t j = 0; j < nin; j++)
            in[j] = 2.0f * support_rnd() + 0.5f;
        for (size_t j = 0; j < nk; j++)
            k[j] = support_rnd() * sqrtf(2.0f / (9.0f * s->cin));
        for (int j = 0; j < s->cout; j++)
            bias[j] = 0.1f * support_rnd();
        bn_cpu_set_threads(2);
        bn_conv *c;
        bn_error err;
        int rc =
            bn_conv_create_precision(&c, BN_CONV_WINOGRAD, prec, s->cin, s->cout, k, bias, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc == 0) {
            CHECK(bn_conv_precision_of(c) == prec);
            int distinct = bytes_one(c, s, in, b, nb, what);
            CHECK_MSG(distinct >= 2, "%d->%d: the configurations gave the same blocks", s->cin,
                      s->cout);
            if (i == 1 && prec == BN_PRECISION_FP32) { /* the portable build's blocks too */
                setenv("BN_WINOGRAD_PORTABLE", "1", 1);
                static const int seven[] = {7};
                bytes_one(c, s, in, seven, 1, "portable");
                unsetenv("BN_WINOGRAD_PORTABLE");
            }
            bn_conv_free(c);
        }
        free(in);
        free(k);
        free(bias);
    }
}

int main(int argc, char **argv) {
    (void)argc;
    CHECK(support_use_fast_blas(argv) == 0);
    test_plans();
    test_bytes(BN_PRECISION_FP32);
    if (bn_conv_winograd_has_precision(BN_PRECISION_BF16))
        test_bytes(BN_PRECISION_BF16);
    else
        printf("BF16: skipped, this CPU has no avx512_bf16\n");
    return check_done();
}
