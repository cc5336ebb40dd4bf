/*
 * bench_precision.h: the --precision option of the benchmarks that run the
 * engine (bench_net, bench_graph); apart from bench_util.h, which
 * programs that do not link the library (fma_peak) use too.
 */
#ifndef BN_BENCH_PRECISION_H
#define BN_BENCH_PRECISION_H

#include "precision.h"

#include <stdio.h>

/* --precision's value (NULL: fp32) resolved for this CPU, after the
 * thread count is set (`fast` may measure its candidates), and printed as
 * an INFO line with the reason. 0; else the exit status after a one-line
 * error: 2 for a spelling it does not know, 1 for one this CPU cannot run. */
static inline int bench_precision(const char *prog, const char *arg, bn_precision *out) {
    bn_precision p = BN_PRECISION_FP32;
    if (arg && bn_precision_parse(arg, &p)) {
        fprintf(stderr, "%s: --precision %s: fp32, fast, bf16, fp16 or amx\n", prog, arg);
        return 2;
    }
    bn_error err = {0};
    char why[512];
    if (bn_precision_resolve(p, out, why, sizeof why, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        return 1;
    }
    printf("INFO precision %s\n", why);
    return 0;
}

#endif
