/*
 * bench_graph: speed of a network read from an ONNX file, alone (no
 * decoding, no database), and where its time goes.
 *
 *   bench_graph MODEL.onnx [--conv auto|direct|winograd] [--batch 8]
 *               [--threads 2] [--reps 5] [--layer TENSOR]
 *               [--precision fp32|fast|bf16|fp16|amx]
 *
 * Runs the graph up to --layer (default: the whole network, through its
 * last tensor, as ONNX Runtime does) at the model's input size on a batch
 * of random inputs in [-120, 120], one warm-up pass then --reps timed
 * passes, and prints
 *   RESULT runtime=bottleneck model=... conv=... batch=... img_s_median=... img_s_best=...
 * (the key=value form of ../shared/bench/peers.sh) and one OP line per
 * operator type with its share of the time in the timed passes.
 */
#include "bench_precision.h"
#include "bench_util.h"
#include "conv.h"
#include "cpu.h"
#include "graph.h"
#include "onnx.h"
#include "precision.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    bn_cpu_blas_use_best_kernels(argv);
    bn_conv_engine engine = BN_CONV_AUTO;
    int batch = 8, threads = 2, reps = 5;
    const char *layer = NULL;
    const char *precision = NULL;
    static const struct option longopts[] = {
        {"conv", required_argument, 0, 'c'},
        {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"reps", required_argument, 0, 'r'},
        {"layer", required_argument, 0, 'l'},
        {"precision", required_argument, 0, 'P'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (bn_conv_engine_parse(optarg, &engine)) {
                fprintf(stderr, "bench_graph: --conv %s: auto, direct or winograd\n", optarg);
                return 2;
            }
            break;
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'l': layer = optarg; break;
        case 'P': precision = optarg; break;
        default: return 2;
        }
    }
    if (optind != argc - 1 || batch < 1 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_graph MODEL.onnx [--conv E] [--batch N] [--threads N] "
                        "[--reps N] [--layer TENSOR] [--precision P]\n");
        return 2;
    }
    bn_cpu_set_threads(threads);
    bn_error err = {0};
    bn_precision prec;
    int rc = bench_precision("bench_graph", precision, &prec);
    if (rc)
        return rc;
    bn_graph *g;
    bn_onnx_info info;
    if (bn_onnx_load(&g, argv[optind], &info, &err) ||
        bn_graph_infer(g, info.image.size, info.image.size, &err)) {
        fprintf(stderr, "bench_graph: %s\n", err.msg);
        return 1;
    }
    if (!layer)
        layer = bn_graph_tensor_name(g, bn_graph_tensor_count(g) - 1);
    bn_graph_set_precision(g, prec);
    if (bn_graph_prepare(g, engine, batch, &layer, 1, &err)) {
        fprintf(stderr, "bench_graph: %s\n", err.msg);
        bn_graph_free(g);
        return 1;
    }
    int s = info.image.size;
    size_t n = (size_t)batch * s * s * 3;
    float *in = malloc(n * sizeof *in);
    unsigned seed = 12345;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = (float)seed / 4294967296.0f * 240.0f - 120.0f;
    }
    bn_graph_run(g, in, batch, &err); /* warm-up */
    double prof[BN_OP_COUNT] = {0}, *t = malloc((size_t)reps * sizeof *t), total = 0;
    bn_graph_profile(g, prof);
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        bn_graph_run(g, in, batch, &err);
        t[r] = bench_now() - t0;
        total += t[r];
    }
    qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
    const char *base = strrchr(argv[optind], '/');
    base = base ? base + 1 : argv[optind];
    printf("RESULT runtime=bottleneck model=%s layer=%s conv=%s precision=%s batch=%d threads=%d "
           "reps=%d s_median=%.4f s_min=%.4f img_s_median=%.3f img_s_best=%.3f memory_mib=%zu\n",
           base, layer, bn_conv_engine_name(engine), bn_precision_name(bn_graph_precision(g)),
           batch, threads, reps, t[reps / 2], t[0], batch / t[reps / 2], batch / t[0],
           bn_graph_memory(g) >> 20);
    for (int op = 0; op < BN_OP_COUNT; op++)
        if (prof[op] > 0)
            printf("OP %-18s %6.1f%%  %.2f ms/img\n", bn_graph_op_name((bn_op)op),
                   100 * prof[op] / total, 1e3 * prof[op] / reps / batch);
    free(t);
    free(in);
    bn_graph_free(g);
    return 0;
}
