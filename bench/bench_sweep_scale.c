/*
 * bench_sweep_scale: how the time of a sweep grows with rows and dimensions
 * (issue 15, item 4). The sweep alone (bn_sweep_train: no process start, no
 * SQLite, no metrics), on stored vectors:
 *
 *   bench_sweep_scale DB FEATURESET [--rows 250,500,1000,2000] [--dims 1024,...]
 *                     [--C 1e-4,...,3] [--standardize] [--reps 3]
 *
 * For each dims value D (default: the feature set's own) and each rows value
 * n, the sweep trains on the first n training rows (split 'train', in path
 * order, so both classes are present only if the list mixes them: it takes
 * rows alternately from the two classes) and their first D columns. Prints a
 * Markdown table: rows x dims, solved on the rows or in the row space (rank),
 * passes over the rows, setup (the row space's K and factor) and the median
 * wall time of --reps runs, with the CPU seconds of the same runs (the
 * process's, all threads). Timings on a shared machine: compare rows measured
 * in one run.
 */
#include "featureset.h"
#include "store.h"
#include "sweep.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Comma-separated numbers into v (at most max); returns how many. */
static int parse_list(const char *s, double *v, int max) {
    int n = 0;
    char *end;
    while (*s && n < max) {
        v[n++] = strtod(s, &end);
        if (end == s)
            return 0;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_sweep_scale DB FEATURESET [--rows N,...] [--dims D,...] "
                        "[--C C,...] [--standardize] [--reps R]\n");
        return 2;
    }
    double rows[16] = {250, 500, 1000, 2000}, dims[16] = {0},
           Cs[64] = {1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3};
    int nrows = 4, ndims = 1, ncand = 10, reps = 3, standardize = 0;
    for (int i = 3; i < argc; i++) {
        int more = i + 1 < argc;
        if (strcmp(argv[i], "--rows") == 0 && more)
            nrows = parse_list(argv[++i], rows, 16);
        else if (strcmp(argv[i], "--dims") == 0 && more)
            ndims = parse_list(argv[++i], dims, 16);
        else if (strcmp(argv[i], "--C") == 0 && more)
            ncand = parse_list(argv[++i], Cs, 64);
        else if (strcmp(argv[i], "--reps") == 0 && more)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--standardize") == 0)
            standardize = 1;
        else {
            fprintf(stderr, "bench_sweep_scale: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (nrows < 1 || ndims < 1 || ncand < 1 || reps < 1) {
        fprintf(stderr, "bench_sweep_scale: empty --rows, --dims, --C or --reps\n");
        return 2;
    }
    bn_error err;
    bn_store *s;
    int64_t fs;
    int fdim;
    char dtype[8];
    bn_features f;
    if (bn_store_open(&s, argv[1], BN_STORE_READONLY, &err) ||
        bn_store_featureset_find(s, argv[2], &fs, &fdim, dtype, &err) ||
        bn_featureset_load(s, fs, "train", &f, &err)) {
        fprintf(stderr, "bench_sweep_scale: %s\n", err.msg);
        return 1;
    }
    /* Rows alternately from the two classes (label 0, label 1, ...). */
    int *order = malloc((size_t)f.n * sizeof *order), no = 0;
    for (int i0 = 0, i1 = 0; no < f.n;) {
        while (i0 < f.n && f.label[i0] != 0)
            i0++;
        while (i1 < f.n && f.label[i1] != 1)
            i1++;
        if (i0 < f.n)
            order[no++] = i0++;
        if (i1 < f.n)
            order[no++] = i1++;
        if (i0 >= f.n && i1 >= f.n)
            break;
    }
    printf("| rows x dims | solved on | passes (double) | setup s | wall s (median of %d) | "
           "CPU s |\n|---|---|---:|---:|---:|---:|\n",
           reps);
    for (int a = 0; a < ndims; a++) {
        int D = dims[a] > 0 && dims[a] < f.dim ? (int)dims[a] : f.dim;
        for (int b = 0; b < nrows; b++) {
            int n = rows[b] > 0 && rows[b] < no ? (int)rows[b] : no;
            float *x = malloc((size_t)n * D * sizeof *x);
            int *y = malloc((size_t)n * sizeof *y);
            if (!x || !y) {
                fprintf(stderr, "bench_sweep_scale: out of memory for %d x %d\n", n, D);
                return 1;
            }
            for (int i = 0; i < n; i++) {
                memcpy(x + (size_t)i * D, f.x + (size_t)order[i] * f.dim, (size_t)D * sizeof *x);
                y[i] = f.label[order[i]];
            }
            bn_data d = {.dim = D, .k = 2, .nblocks = 1};
            d.block[0] = (bn_block){x, y, n};
            bn_train_opts o;
            bn_train_opts_default(&o);
            o.standardize = standardize;
            bn_model *m = calloc((size_t)ncand, sizeof *m);
            bn_train_info *in = calloc((size_t)ncand, sizeof *in);
            double wall[64], cpu[64];
            bn_sweep_stats st = {0};
            for (int r = 0; r < reps && r < 64; r++) {
                double t0 = bench_now(), c0 = cpu_now();
                if (bn_sweep_train(&d, &o, Cs, ncand, m, in, &st, &err)) {
                    fprintf(stderr, "bench_sweep_scale: %s\n", err.msg);
                    return 1;
                }
                wall[r] = bench_now() - t0;
                cpu[r] = cpu_now() - c0;
                for (int c = 0; c < ncand; c++)
                    bn_model_free(&m[c]);
            }
            char on[64];
            if (st.row_space)
                snprintf(on, sizeof on, "row space (rank %d)", st.rank);
            else
                snprintf(on, sizeof on, "the rows");
            int nr = reps < 64 ? reps : 64;
            printf("| %d x %d | %s | %d (%d) | %.3f | %.3f | %.3f |\n", n, D, on, st.rounds,
                   st.double_rounds, st.setup_seconds, bench_median(wall, nr),
                   bench_median(cpu, nr));
            fflush(stdout);
            free(x), free(y), free(m), free(in);
        }
    }
    free(order);
    bn_featureset_free(&f);
    bn_store_close(s);
    return 0;
}
