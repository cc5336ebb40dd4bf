/*
 * bench_util.h: the clock, the process's CPU time and the median the
 * benchmarks here use (static inline: each bench is one program file).
 */
#ifndef BN_BENCH_UTIL_H
#define BN_BENCH_UTIL_H

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds used by the process so far (all threads, user + system). */
static inline double bench_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v. */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* fn on jobs[0] here and on jobs[1..threads-1] (each size bytes apart) on
 * threads of their own (at most 8), all at once; returns the seconds until
 * the last one ended. */
static inline double bench_run_threads(void *(*fn)(void *), void *jobs, size_t size, int threads) {
    pthread_t t[8];
    double t0 = bench_now();
    for (int i = 1; i < threads && i < 8; i++)
        pthread_create(&t[i], NULL, fn, (char *)jobs + (size_t)i * size);
    fn(jobs);
    for (int i = 1; i < threads && i < 8; i++)
        pthread_join(t[i], NULL);
    return bench_now() - t0;
}
#endif
