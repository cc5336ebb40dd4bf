/*
 * mem_bandwidth: how fast this host reads data from each level of its
 * memory, on 1 and 2 threads: the other half of the Winograd engine's
 * budget beside fma_peak's multiply-adds (docs/PERFORMANCE.md, "What item 5
 * would take"). V, M and U of the larger layers live past the L2, so the
 * rate here past the L2 bounds how fast those layers can stream them.
 *
 *   mem_bandwidth [MB ...]     (default 1 4 16 64 256: MB per thread)
 *
 * Each thread sums its own buffer of that size (8-float vectors, four
 * independent sums, so that the adds never wait on each other) as many
 * times as make about 4 GB, best of 3 runs. Prints one line per size and
 * thread count in peers.sh's key=value form:
 *   RESULT bench=read mb_per_thread=16 threads=2 gbytes_s=...
 * Sizes that fit a core's L2 measure the L2; a few MB per thread the
 * last-level cache (or what a virtual machine gets of it); hundreds of MB
 * the memory.
 */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));

typedef struct {
    const v8 *buf;
    size_t n; /* vectors, a multiple of 4 */
    int passes;
    float sink;
} job;

/* (AVX2: one 32-byte load per add, as the engine's AVX2 build reads) */
__attribute__((target("avx2"))) static void *run(void *arg) {
    job *j = arg;
    v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (int p = 0; p < j->passes; p++) {
        for (size_t i = 0; i < j->n; i += 4) {
            s0 += j->buf[i];
            s1 += j->buf[i + 1];
            s2 += j->buf[i + 2];
            s3 += j->buf[i + 3];
        }
        __asm__("" : "+x"(s0)); /* each pass reads the buffer again */
    }
    v8 s = (s0 + s1) + (s2 + s3);
    j->sink = s[0];
    return NULL;
}

/* GB/s of `threads` threads each reading its own buffer `passes` times. */
static double measure(job *j, int threads) {
    double s = bench_run_threads(run, j, sizeof *j, threads);
    return (double)threads * (double)j[0].passes * (double)j[0].n * sizeof(v8) / s / 1e9;
}

int main(int argc, char **argv) {
    static const double defaults[] = {1, 4, 16, 64, 256};
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) {
        fprintf(stderr, "mem_bandwidth: this CPU has no AVX2\n");
        return 1;
    }
    int nsizes = argc > 1 ? argc - 1 : (int)(sizeof defaults / sizeof *defaults);
    for (int k = 0; k < nsizes; k++) {
        double mb = argc > 1 ? atof(argv[k + 1]) : defaults[k];
        if (!(mb >= 0.0625 && mb <= 4096)) {
            fprintf(stderr, "mem_bandwidth: %s: MB per thread, from 0.0625 to 4096\n", argv[k + 1]);
            return 2;
        }
        size_t bytes = (size_t)(mb * 1048576.0) / 128 * 128;
        job j[2];
        for (int i = 0; i < 2; i++) {
            v8 *b = aligned_alloc(64, bytes);
            if (!b) {
                fprintf(stderr, "mem_bandwidth: out of memory for %.0f MB\n", mb);
                return 1;
            }
            memset(b, 0, bytes); /* the pages exist before the clock starts */
            double passes = 4e9 / (double)bytes;
            j[i] = (job){b, bytes / sizeof(v8), passes < 1 ? 1 : (int)passes, 0};
        }
        for (int threads = 1; threads <= 2; threads++) {
            double best = 0;
            for (int r = 0; r < 3; r++) {
                double g = measure(j, threads);
                best = g > best ? g : best;
            }
            printf("RESULT bench=read mb_per_thread=%g threads=%d gbytes_s=%.1f\n", mb, threads,
                   best);
        }
        if (j[0].sink == 12345.0f) /* never: keeps the sums live */
            printf("#\n");
        free((void *)j[0].buf);
        free((void *)j[1].buf);
    }
    return 0;
}
