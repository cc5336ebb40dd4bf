/*
 * bench_net: speed of the VGG16 convolutional base alone (no decoding, no
 * database), the number the extractor's throughput is built on.
 *
 *   bench_net [--conv auto|direct|winograd] [--size 224] [--batch 8]
 *             [--threads 2] [--reps 5] [--layers] [--weights FILE.h5]
 *             [--peak GFLOPS]
 *
 * 1. The whole network (bn_vgg16_forward up to block5_pool) on a batch of
 *    random inputs in [-120, 120] (the range of preprocessed photos), one
 *    warm-up pass, then --reps timed passes. Prints
 *      RESULT runtime=bottleneck conv=... img_s_median=... img_s_best=...
 *    in the key=value form of ../shared/bench/peers.sh, plus the peak RSS of
 *    the process at that point (network, buffers, transformed kernels) and
 *    the CPU time per image (all threads): on a busy machine, threads /
 *    cpu_ms_per_img bounds what a quiet one would reach.
 * 2. With --layers, each of the 13 convolutions alone at its shape in the
 *    network (the last of each block with its pool, one call, as the network
 *    runs them), same batch and engine: median milliseconds per
 *    batch and per image, GFLOPS counted as the direct method's 2*9*cin*cout
 *    multiply-adds per pixel (so that engines compare on one scale; Winograd
 *    can exceed the FMA peak), and that rate as a percentage of --peak
 *    (default 234, the FP32 peak of the 2-core reference machine in
 *    ../shared/README.md). One LAYER line each, then a Markdown table; for
 *    Winograd layers both also say how the engine ran them (its plan for the
 *    caches of INFO caches: rule, tiles per block, blocks, V + M bytes,
 *    private or shared blocks, V and the output past the caches).
 *
 * It prints the data caches the Winograd blocks are sized for first
 * (INFO caches ...; $BN_CACHES forces others, docs/PERFORMANCE.md), and
 * with --layers the rate of the Winograd products' kernel alone, one thread
 * on data in cache, FP32, BF16 and FP16 (INFO kernel_gmacs ...; 0 where the
 * CPU lacks the instructions): the layers' rates
 * are bounded by it, and the gap says what memory and the transforms cost.
 *
 * Weights: random He-normal (seeded) unless --weights is given: speed does
 * not depend on the values. OpenBLAS picks its kernels when it loads; if it
 * picked generic ones on a CPU it does not recognise, bench_net sets
 * OPENBLAS_CORETYPE and re-executes itself, as the extractor does, so that
 * the direct engine is measured at its real speed.
 */
#include "bench_precision.h"
#include "bench_util.h"
#include "conv.h"
#include "cpu.h"
#include "precision.h"
#include "vgg16.h"
#include "weights.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Multiply-adds of the 13 convolutions at 224x224, times 2 (vgg16_flops.py). */
#define NET_FLOPS_224 30693261312.0

static uint64_t rng = 0x853c49e6748fea9bull;

/* Uniform in [0, 1), xorshift64*. */
static double urand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static float normal(void) {
    double u = urand() + 1e-300, v = urand();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void fill_uniform(float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)urand();
}

/* He-normal kernels and small biases for all 13 layers, shapes from weights.h. */
static int random_weights(bn_vgg16_weights *w) {
    memset(w, 0, sizeof *w);
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        bn_conv_weights *c = &w->conv[i];
        c->cin = bn_vgg16_convs[i].cin;
        c->cout = bn_vgg16_convs[i].cout;
        size_t nk = (size_t)9 * c->cin * c->cout;
        c->kernel = malloc(nk * sizeof(float));
        c->bias = malloc((size_t)c->cout * sizeof(float));
        if (!c->kernel || !c->bias)
            return -1;
        float sd = sqrtf(2.0f / (9.0f * (float)c->cin));
        for (size_t k = 0; k < nk; k++)
            c->kernel[k] = sd * normal();
        for (int k = 0; k < c->cout; k++)
            c->bias[k] = 0.01f * (float)(k % 7);
    }
    return 0;
}

static void free_weights(bn_vgg16_weights *w) {
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        free(w->conv[i].kernel);
        free(w->conv[i].bias);
    }
}

static void *xalloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench_net: out of memory (%zu MB)\n", bytes >> 20);
        exit(1);
    }
    return p;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* kB on Linux */
}

/* One row of the per-layer table. */
typedef struct {
    char name[32];
    const char *engine;
    int size, cin, cout;
    double ms, flops;
    int winograd;               /* plan is set */
    bn_conv_winograd_plan plan; /* how the Winograd engine ran it (bn_cpu_caches()) */
} layer_row;

/* Time each conv of the network alone, the last of each block together with
 * its pool (one bn_conv_forward_pool call, as bn_vgg16_forward runs them);
 * returns the number of rows. */
static int bench_layers(const bn_vgg16_weights *w, bn_conv_engine engine, bn_precision prec,
                        int size, int batch, int reps, layer_row *rows) {
    static const int shift[BN_VGG16_NCONV] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};
    static const int pool_after[BN_VGG16_NCONV] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
    int nrows = 0, block = 1;
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        int s = size >> shift[i], cin = w->conv[i].cin, cout = w->conv[i].cout;
        int pool = pool_after[i];
        bn_conv *c;
        bn_error err;
        if (bn_conv_create_precision(&c, engine, prec, cin, cout, w->conv[i].kernel,
                                     w->conv[i].bias, &err)) {
            fprintf(stderr, "bench_net: %s\n", err.msg);
            exit(1);
        }
        size_t nin = (size_t)batch * s * s * cin, nout = (size_t)batch * s * s * cout;
        size_t wsb =
            pool ? bn_conv_workspace_pool(c, batch, s, s) : bn_conv_workspace(c, batch, s, s);
        float *in = xalloc(nin * sizeof(float)), *out = xalloc(nout * sizeof(float));
        void *ws = xalloc(wsb + 64);
        fill_uniform(in, nin, 0.0f, 4.0f);
        double t[64];
        for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
            double t0 = bench_now();
            if (pool)
                bn_conv_forward_pool(c, in, out, batch, s, s, ws);
            else
                bn_conv_forward(c, in, out, batch, s, s, ws);
            if (r >= 0)
                t[r] = bench_now() - t0;
        }
        layer_row *row = &rows[nrows++];
        if (pool)
            snprintf(row->name, sizeof row->name, "%s+pool%d", bn_vgg16_convs[i].name, block++);
        else
            snprintf(row->name, sizeof row->name, "%s", bn_vgg16_convs[i].name);
        row->engine = bn_conv_engine_name(bn_conv_engine_of(c));
        row->size = s;
        row->cin = cin;
        row->cout = cout;
        row->ms = 1e3 * bench_median(t, reps);
        row->flops = 2.0 * 9.0 * cin * cout * (double)s * s * batch;
        row->winograd = bn_conv_engine_of(c) == BN_CONV_WINOGRAD;
        if (row->winograd)
            bn_conv_winograd_plan_for(cin, cout, batch, s, s, pool, bn_conv_precision_of(c),
                                      bn_cpu_threads(), bn_cpu_caches(), &row->plan);
        free(in);
        free(out);
        free(ws);
        bn_conv_free(c);
    }
    return nrows;
}

static void usage(void) {
    fputs("usage: bench_net [--conv auto|direct|winograd] [--size N] [--batch N] [--threads N]\n"
          "                 [--reps N] [--layers] [--weights FILE.h5] [--peak GFLOPS]\n"
          "                 [--precision fp32|fast|bf16|fp16|amx]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    /* Before anything else: make OpenBLAS load its real kernels (if that
     * fails, measure anyway; the INFO line says which kernels ran). */
    bn_cpu_blas_use_best_kernels(argv);

    bn_conv_engine engine = BN_CONV_AUTO;
    const char *precision = NULL;
    int size = 224, batch = 8, threads = 2, reps = 5, layers = 0;
    double peak = 234.0;
    const char *weights_path = NULL;
    static const struct option opts[] = {
        {"conv", required_argument, 0, 'c'},
        {"size", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'},
        {"layers", no_argument, 0, 'l'},
        {"weights", required_argument, 0, 'w'},
        {"peak", required_argument, 0, 'p'},
        {"precision", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (o) {
        case 'c':
            if (bn_conv_engine_parse(optarg, &engine))
                usage();
            break;
        case 's': size = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'l': layers = 1; break;
        case 'w': weights_path = optarg; break;
        case 'p': peak = atof(optarg); break;
        case 'P': precision = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || batch < 1 || reps < 1 || reps > 64 || peak <= 0)
        usage();
    if (size < 32 || size % 32) {
        fprintf(stderr, "bench_net: --size %d: VGG16's five pools need a multiple of 32\n", size);
        return 2;
    }
    bn_cpu_set_threads(threads);

    bn_vgg16_weights w;
    bn_error err;
    bn_precision prec;
    int rc = bench_precision("bench_net", precision, &prec);
    if (rc)
        return rc;
    if (weights_path) {
        if (bn_weights_load(&w, weights_path, &err)) {
            fprintf(stderr, "bench_net: %s\n", err.msg);
            return 1;
        }
    } else if (random_weights(&w)) {
        fprintf(stderr, "bench_net: out of memory for weights\n");
        return 1;
    }

    printf("INFO bench_net conv=%s size=%d batch=%d threads=%d reps=%d blas_core=%s\n",
           bn_conv_engine_name(engine), size, batch, bn_cpu_threads(), reps, bn_cpu_blas_core());
    char caches[192];
    bn_cpu_caches_format(bn_cpu_caches(), caches, sizeof caches);
    printf("INFO caches %s\n", caches); /* what the Winograd blocks were sized for */
    /* With --layers, the products' kernel alone, one thread, data in cache:
     * what the layers' GFLOPS are to be read against (0: not on this CPU).
     * Not in every run: bench/run.sh's paired rounds would pay 0.3 s each. */
    if (layers) {
        double kf = bn_conv_winograd_kernel_gmacs(BN_PRECISION_FP32, 3, 0.05);
        double kb = bn_conv_winograd_kernel_gmacs(BN_PRECISION_BF16, 3, 0.05);
        /* FP16 only where vfmadd231ph runs: the emulation's rate says nothing */
        double kh = bn_conv_winograd_fp16_emulated()
                        ? 0
                        : bn_conv_winograd_kernel_gmacs(BN_PRECISION_FP16, 3, 0.05);
        double ka = bn_conv_winograd_kernel_gmacs(BN_PRECISION_AMX, 3, 0.05);
        printf("INFO kernel_gmacs fp32=%.1f bf16=%.1f fp16=%.1f amx=%.1f bf16/fp32=%.2f "
               "fp16/fp32=%.2f amx/fp32=%.2f (one thread, in cache)\n",
               kf, kb, kh, ka, kf > 0 ? kb / kf : 0.0, kf > 0 ? kh / kf : 0.0,
               kf > 0 ? ka / kf : 0.0);
    }
    fflush(stdout);

    /* 1. The whole network. */
    bn_vgg16 *net;
    if (bn_vgg16_create_precision(&net, &w, engine, prec, size, batch, BN_LAYER_BLOCK5_POOL,
                                  &err)) {
        fprintf(stderr, "bench_net: %s\n", err.msg);
        return 1;
    }
    int dim = bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, size);
    size_t nin = (size_t)batch * size * size * 3;
    float *in = xalloc(nin * sizeof(float)), *out = xalloc((size_t)batch * dim * sizeof(float));
    fill_uniform(in, nin, -120.0f, 120.0f);
    double t[64];
    bn_vgg16_forward(net, in, batch, BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, out, &err);
    double cpu0 = bench_cpu_seconds();
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bn_vgg16_forward(net, in, batch, BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, out, &err);
        t[r] = bench_now() - t0;
    }
    /* Every rep, in order: on a shared machine the spread says how much to trust the median. */
    printf("INFO reps_ms=");
    for (int r = 0; r < reps; r++)
        printf("%s%.0f", r ? "," : "", 1e3 * t[r]);
    printf("\n");
    double cpu_ms = 1e3 * (bench_cpu_seconds() - cpu0) / ((double)reps * batch);
    double sum = 0;
    for (size_t i = 0; i < (size_t)batch * dim; i++)
        sum += out[i];
    double best = t[0];
    for (int r = 1; r < reps; r++)
        best = t[r] < best ? t[r] : best;
    double med = bench_median(t, reps);
    double flops = NET_FLOPS_224 * ((double)size / 224) * ((double)size / 224) * batch;
    printf("RESULT runtime=bottleneck conv=%s size=%d batch=%d threads=%d reps=%d s_median=%.4f "
           "s_min=%.4f img_s_median=%.3f img_s_best=%.3f gflops_median=%.1f peak_rss_mb=%.0f "
           "cpu_ms_per_img=%.1f out_mean=%.4g engine_id=%s\n",
           bn_conv_engine_name(engine), size, batch, bn_cpu_threads(), reps, med, best, batch / med,
           batch / best, flops / med / 1e9, peak_rss_mb(), cpu_ms, sum / ((double)batch * dim),
           bn_vgg16_engine_id(net));
    fflush(stdout);
    free(in);
    free(out);
    bn_vgg16_free(net);

    /* 2. Layer by layer. */
    if (layers) {
        layer_row rows[BN_VGG16_NCONV];
        int n = bench_layers(&w, engine, prec, size, batch, reps, rows);
        double total = 0;
        for (int i = 0; i < n; i++) {
            layer_row *r = &rows[i];
            double gf = r->flops / (r->ms * 1e-3) / 1e9;
            total += r->ms;
            printf("LAYER name=%s engine=%s shape=%dx%dx%d->%d ms=%.2f ms_per_image=%.3f "
                   "gflops=%.1f peak_pct=%.0f",
                   r->name, r->engine, r->size, r->size, r->cin, r->cout, r->ms, r->ms / batch, gf,
                   100.0 * gf / peak);
            if (r->winograd)
                printf(" rule=%s tb=%zu blocks=%zu block_kb=%zu blocks_are=%s vstream=%d stream=%d",
                       r->plan.rule, r->plan.tb, r->plan.blocks, r->plan.block_bytes >> 10,
                       r->plan.private_blocks ? "private" : "shared", r->plan.vstream,
                       r->plan.stream);
            printf("\n");
        }
        printf("LAYER name=total ms=%.2f ms_per_image=%.3f img_s=%.3f\n", total, total / batch,
               1e3 * batch / total);
        printf("\n| layer | engine | input | ms/image | GFLOPS | %% of %.0f GFLOPS | rule | tb | "
               "blocks | V+M KiB | blocks are | V stream | out stream |\n",
               peak);
        printf("|---|---|---|---:|---:|---:|---|---:|---:|---:|---|---|---|\n");
        for (int i = 0; i < n; i++) {
            layer_row *r = &rows[i];
            double gf = r->flops / (r->ms * 1e-3) / 1e9;
            printf("| %s | %s | %dx%dx%d | %.2f | %.0f | %.0f%% |", r->name, r->engine, r->size,
                   r->size, r->cin, r->ms / batch, gf, 100.0 * gf / peak);
            if (r->winograd)
                printf(" %s | %zu | %zu | %zu | %s | %s | %s |\n", r->plan.rule, r->plan.tb,
                       r->plan.blocks, r->plan.block_bytes >> 10,
                       r->plan.private_blocks ? "private" : "shared",
                       r->plan.vstream ? "yes" : "no", r->plan.stream ? "yes" : "no");
            else
                printf(" | | | | | | |\n");
        }
        printf("| total | | | %.2f | %.0f | | | | | | | | |\n", total / batch,
               flops / (total * 1e-3) / 1e9);
    }
    if (weights_path)
        bn_weights_free(&w);
    else
        free_weights(&w);
    return 0;
}
