/*
 * classify.h: what the files of bottleneck-classify share: the parsed command
 * line, the commands, and the output helpers (format.c).
 *
 *   main.c         command and option parsing, usage, exit codes
 *   util.c         failure messages and opening the database, for every command
 *   cmd_train.c    train: grid, selection (validation or K-fold), refit, storage
 *   cmd_runs.c     runs (list) and show (one run)
 *   cmd_predict.c  predict: a stored split, or new image files
 *   cmd_report.c   report: one HTML file (report.h lists its other files)
 *   forward.c      predict and report in bottleneck-classify, the program
 *                  without the image code: exec bottleneck-classify-images
 *   format.c       metrics as tables and as JSON
 */
#ifndef BN_CLASSIFY_H
#define BN_CLASSIFY_H

#include "json.h"
#include "metrics.h"
#include "runs.h"
#include "store.h"

#include <stdint.h>
#include <stdio.h>

#define CL_EXIT_FATAL 1
#define CL_EXIT_USAGE 2
#define CL_EXIT_SOME_FAILED 3

#define CL_MAX_FILTERS 64

typedef struct {
    const char *argv0;
    char **argv; /* the whole command line, as given (forward.c passes it on) */
    const char *db;
    int json, quiet;
    /* train: data and selection */
    const char *features, *train, *valid, *test, *select, *note;
    const char *dataset; /* --dataset NAME (train, runs, predict) */
    int folds, refit;
    double holdout; /* --holdout F: fraction held out of the training rows; 0: none */
    /* train: model; lists are comma-separated text, parsed by cmd_train.c */
    const char *C, *l2, *class_weight, *standardize, *lr, *batch_size;
    const char *solver;
    int max_iter, epochs, patience;
    double tol;
    /* the first option given that only some solvers read, for the check
     * that the chosen solver reads it: "--max-iter", "--epochs", ... */
    const char *lbfgs_only, *sgd_only;
    uint64_t seed;
    /* runs, show */
    const char *split, *sort;
    const char *filters[CL_MAX_FILTERS];
    int nfilters, limit;
    /* predict */
    int64_t run;
    const char *weights;
    int threads;
    /* report */
    int64_t sweep;
    const char *runs_list, *output, *images;
    int gallery;
    /* positional arguments */
    char **args;
    int nargs;
} cl_opts;

int cl_train(const cl_opts *o);
int cl_runs(const cl_opts *o);
int cl_show(const cl_opts *o);
int cl_predict(const cl_opts *o);
int cl_report(const cl_opts *o);

/* ---- util.c ---- */

/* Print "bottleneck-classify: <msg>" on stderr (and with --json the object
 * below on stdout) and return CL_EXIT_FATAL. */
int cl_fail(const char *msg);
/* With on (--json), cl_fail also prints {"ok":false,"error":...} on stdout. */
void cl_fail_json(int on);
int cl_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the database for these commands (it must exist). */
int cl_open(const cl_opts *o, int readonly, bn_store **s);

/* ---- format.c ---- */

/* JSON values: strings escaped, non-finite numbers as null. */
/* {"n":..,"accuracy":..,...,"per_class":{...},"confusion":[[...]]}; detail = 0
 * leaves out per_class and confusion. */
void cl_json_metrics(FILE *f, const bn_metrics *m, char *const *classes, int detail);

/* A readable block: overall line, per-class table, confusion matrix. */
void cl_print_metrics(FILE *f, const char *title, const bn_metrics *m, char *const *classes,
                      int detail);

/* "C=0.1 balanced standardized adam lr=0.001 batch=32" */
void cl_describe_opts(char *out, size_t n, const bn_train_opts *o);

/* A number in few characters for tables: 0.9880, 3.1e-05, 100 */
const char *cl_num(char *buf, size_t n, double v);

#endif
