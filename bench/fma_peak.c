/*
 * fma_peak: this CPU's FP32 multiply-add peak, for the hosts where
 * ../shared/bench/peers.sh peak cannot run (its peak_fma.c is built with
 * AVX-512 intrinsics and does not compile on a CPU without AVX-512, such as
 * an AMD EPYC of the Zen 2 generation).
 *
 *   fma_peak [reps]      (default 5)
 *
 * A loop of independent FMAs on 12 accumulators (enough to cover the FMA
 * latency of every x86 core of the last ten years at two issues per cycle),
 * 8 floats wide with AVX2 (and 16 with AVX-512 where the CPU has it), on 1
 * and 2 threads, each run about 0.3 s. Prints one line per width and thread
 * count in the key=value form of peers.sh:
 *   RESULT bench=fma_avx2_fp32 threads=2 reps=5 gflops_median=... gflops_max=...
 * bench/run.sh reads the 2-thread median as the host's FP32 peak when
 * peers.sh gave none (the per-layer table's percentages, issue 16's ceiling).
 */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#define NACC 12
#define ITERS 4000000L

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

/* Returns a value that depends on every accumulator, so nothing is dropped. */
#define FMA_LOOP(T, ATTR, NAME)                                                                    \
    static ATTR float NAME(long iters) {                                                           \
        T a[NACC], x, y;                                                                           \
        for (int i = 0; i < (int)(sizeof x / sizeof(float)); i++) {                                \
            x[i] = 0.999999f;                                                                      \
            y[i] = 1e-7f;                                                                          \
        }                                                                                          \
        for (int k = 0; k < NACC; k++)                                                             \
            a[k] = x * (float)(k + 1);                                                             \
        for (long i = 0; i < iters; i++) {                                                         \
            _Pragma("GCC unroll 12") for (int k = 0; k < NACC; k++) a[k] = a[k] * x + y;           \
            __asm__("" : "+x"(x));                                                                 \
        }                                                                                          \
        T s = a[0];                                                                                \
        for (int k = 1; k < NACC; k++)                                                             \
            s += a[k];                                                                             \
        return s[0];                                                                               \
    }
FMA_LOOP(v8, __attribute__((target("avx2,fma"))), fma8)
FMA_LOOP(v16, __attribute__((target("avx512f,fma"))), fma16)

typedef struct {
    int wide;
    long iters;
    float sink;
} job;

static void *run(void *arg) {
    job *j = arg;
    j->sink = j->wide ? fma16(j->iters) : fma8(j->iters);
    return NULL;
}

/* GFLOPS of `threads` threads each running iters steps of NACC FMAs. */
static double measure(int wide, int threads, long iters) {
    job j[2] = {{wide, iters, 0}, {wide, iters, 0}};
    double s = bench_run_threads(run, j, sizeof *j, threads);
    if (j[0].sink == 12345.0f) /* never: keeps the results live */
        printf("#\n");
    return (double)threads * iters * NACC * (wide ? 16 : 8) * 2 / s / 1e9;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    if (reps < 1 || reps > 100) {
        fprintf(stderr, "usage: fma_peak [reps 1..100]\n");
        return 2;
    }
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "fma_peak: this CPU has no AVX2 + FMA\n");
        return 1;
    }
    const int widths = __builtin_cpu_supports("avx512f") ? 2 : 1;
    for (int wide = 0; wide < widths; wide++)
        for (int threads = 1; threads <= 2; threads++) {
            double g[100];
            /* the step count for about 0.3 s, from a short first run */
            double probe = measure(wide, threads, ITERS / 40);
            long iters = (long)(0.3 * probe * 1e9 / threads / NACC / (wide ? 16 : 8) / 2);
            for (int r = 0; r < reps; r++)
                g[r] = measure(wide, threads, iters);
            qsort(g, (size_t)reps, sizeof g[0], bench_cmp_double);
            printf("RESULT bench=fma_%s_fp32 threads=%d reps=%d gflops_median=%.1f "
                   "gflops_max=%.1f\n",
                   wide ? "avx512" : "avx2", threads, reps, g[reps / 2], g[reps - 1]);
        }
    return 0;
}
