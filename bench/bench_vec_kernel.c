/*
 * bench_vec_kernel: vec_knn's distance kernel alone, on one thread, one
 * vector at a time (bn_vec_dot per vector) against four at a time
 * (bn_vec_dot_many: the query read once for four vectors), at each
 * dimension asked (docs/PERFORMANCE.md, Search: "What limits it").
 *
 * Each dimension streams about --mb MB of random float32 vectors (default
 * 200: past the last-level cache, as vec_knn's connection cache at 100,000 x
 * 1,024) from memory; the two forms alternate --reps times (default 15) in
 * one process, so both see the same machine; prints the median and best GB/s
 * of each and their ratio, and checks that both gave the same distances, bit
 * for bit (exit 1 if not).
 *
 *   bench_vec_kernel [--dims 1024,25088] [--mb 200] [--reps 15] [--metric dot|l2|l1]
 */
#include "vec_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef double (*one_fn)(const float *, const float *, int64_t);
typedef void (*many_fn)(const float *, const float *, int64_t, int64_t, int64_t, double *);

int main(int argc, char **argv) {
    const char *dims = "1024,25088", *metric = "dot";
    double mb = 200;
    int reps = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dims"))
            dims = argv[i + 1];
        else if (!strcmp(argv[i], "--mb"))
            mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--metric"))
            metric = argv[i + 1];
        else {
            fprintf(stderr, "bench_vec_kernel: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 1000 || !(mb > 0)) {
        fprintf(stderr, "bench_vec_kernel: --reps 1-1000, --mb > 0\n");
        return 2;
    }
    one_fn one = bn_vec_dot;
    many_fn many = bn_vec_dot_many;
    if (!strcmp(metric, "l2"))
        one = bn_vec_l2sq, many = bn_vec_l2sq_many;
    else if (!strcmp(metric, "l1"))
        one = bn_vec_l1, many = bn_vec_l1_many;
    else if (strcmp(metric, "dot")) {
        fprintf(stderr, "bench_vec_kernel: --metric dot, l2 or l1\n");
        return 2;
    }
    bn_vec_kernels_many_min(0); /* four at a time at every size: what is measured */
    printf("kernels: %s, metric %s, one thread\n",
           bn_vec_kernels_avx512(-1) ? "AVX-512" : "portable", metric);
    printf("| dims | vectors | MB | one at a time GB/s (median, best) | four at a time GB/s | "
           "ratio (medians) | same bits |\n|---:|---:|---:|---:|---:|---:|---|\n");
    int status = 0;
    for (const char *p = dims; *p;) {
        int64_t dim = strtoll(p, (char **)&p, 10);
        if (*p == ',')
            p++;
        if (dim < 1)
            break;
        int64_t n = (int64_t)(mb * 1e6 / (4.0 * (double)dim));
        if (n < 4)
            n = 4;
        float *v = malloc((size_t)(n * dim) * sizeof *v), *q = malloc((size_t)dim * sizeof *q);
        double *d1 = malloc((size_t)n * sizeof *d1), *d4 = malloc((size_t)n * sizeof *d4);
        double *t1 = malloc((size_t)reps * sizeof *t1), *t4 = malloc((size_t)reps * sizeof *t4);
        if (!v || !q || !d1 || !d4 || !t1 || !t4) {
            fprintf(stderr, "bench_vec_kernel: out of memory\n");
            return 1;
        }
        uint64_t r = 0x9e3779b97f4a7c15ull;
        for (int64_t i = 0; i < n * dim + dim; i++) {
            r ^= r >> 12, r ^= r << 25, r ^= r >> 27;
            float x = (float)((r * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
            if (i < n * dim)
                v[i] = x;
            else
                q[i - n * dim] = x;
        }
        for (int rep = -1; rep < reps; rep++) { /* rep -1: warm-up */
            double a = now();
            for (int64_t i = 0; i < n; i++)
                d1[i] = one(q, v + i * dim, dim);
            double b = now();
            many(q, v, dim, dim, n, d4);
            double c = now();
            if (rep >= 0)
                t1[rep] = b - a, t4[rep] = c - b;
        }
        int same = memcmp(d1, d4, (size_t)n * sizeof *d1) == 0;
        status |= !same;
        qsort(t1, (size_t)reps, sizeof *t1, cmp_double);
        qsort(t4, (size_t)reps, sizeof *t4, cmp_double);
        double bytes = (double)n * (double)dim * 4;
        printf("| %lld | %lld | %.0f | %.2f (%.2f) | %.2f (%.2f) | %.2f | %s |\n", (long long)dim,
               (long long)n, bytes / 1e6, bytes / t1[reps / 2] / 1e9, bytes / t1[0] / 1e9,
               bytes / t4[reps / 2] / 1e9, bytes / t4[0] / 1e9, t1[reps / 2] / t4[reps / 2],
               same ? "yes" : "NO");
        free(v), free(q), free(d1), free(d4), free(t1), free(t4);
    }
    return status;
}
