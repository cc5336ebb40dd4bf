/*
 * runs.h: classify's records in the database (schema/002_classify.sql):
 * sweeps, runs with their hyperparameters and training outcome, metrics per
 * split, confusion matrices, trained heads and predictions.
 *
 * Writers take the caller's open transaction (bn_store_begin/commit) so a
 * sweep's runs, metrics and heads land together or not at all. Readers load
 * one run (for show and predict) or list runs with filters for `runs`.
 */
#ifndef BN_RUNS_H
#define BN_RUNS_H

#include "error.h"
#include "featureset.h"
#include "metrics.h"
#include "store.h"
#include "train.h"

#include <stdint.h>

/* One run, as stored. Strings are owned (bn_run_free). */
typedef struct {
    int64_t id, sweep, featureset;
    char *featureset_name;
    int64_t dataset;    /* datasets.id trained on; 0: not recorded (older runs) */
    char *dataset_name; /* may be NULL */
    char *role;         /* "candidate" | "refit" */
    char *train_splits; /* "train" or "train,validation" */
    int folds;          /* 0: none */
    bn_train_opts opts;
    int k;
    char **classes; /* (k) */
    int n_train, dim;
    bn_train_info info; /* iterations, converged, objective, seconds */
    int chosen;
    char *note;       /* may be NULL */
    char *created_at; /* ISO 8601 UTC */
} bn_run;

void bn_run_free(bn_run *r);

/* ---- writing (inside the caller's transaction) ---- */

/* dataset 0 and holdout 0: not recorded. */
int bn_runs_sweep_create(bn_store *s, int64_t featureset, int64_t dataset, const char *select_by,
                         const char *select_on, int folds, double holdout, int candidates,
                         int64_t *sweep, bn_error *err);
/* The images (images.id) a --holdout sweep held out. */
int bn_runs_put_holdout(bn_store *s, int64_t sweep, const int64_t *images, int n, bn_error *err);
/* chosen/final may be 0 (NULL). */
int bn_runs_sweep_finish(bn_store *s, int64_t sweep, int64_t chosen, int64_t final, double seconds,
                         bn_error *err);

/* Insert r (its id is ignored) and set *id. */
int bn_runs_put(bn_store *s, const bn_run *r, int64_t *id, bn_error *err);
int bn_runs_set_chosen(bn_store *s, int64_t run, bn_error *err);

/* All of m on split (rows of run_metrics and run_confusion), with the class
 * names for per-class rows. */
int bn_runs_put_metrics(bn_store *s, int64_t run, const char *split, const bn_metrics *m,
                        char *const *classes, bn_error *err);
/* One overall value (cross-validation means, ...). */
int bn_runs_put_metric(bn_store *s, int64_t run, const char *split, const char *metric,
                       double value, bn_error *err);

int bn_runs_put_head(bn_store *s, int64_t run, const bn_head *h, bn_error *err);

/* Predictions of run for n images: proba (n, k) in the run's class order.
 * Replaces earlier predictions of this run for these images. */
int bn_runs_put_predictions(bn_store *s, int64_t run, const int64_t *image, const double *proba,
                            int n, int k, char *const *classes, bn_error *err);

/* ---- reading ---- */

/* The run with this id; BN_EINVAL if there is none. */
int bn_runs_get(bn_store *s, int64_t id, bn_run *r, bn_error *err);

/* The images of a run's dataset that its split name stands for: the split's
 * rows; 'all' (a dataset without split folders) every row; 'holdout' the
 * rows its --holdout sweep held out (when it was one). rows->dataset is 0
 * for runs from before datasets (every dataset, as then). */
int bn_runs_rows(bn_store *s, const bn_run *r, const char *split, bn_rows *rows, bn_error *err);

/* Its head; BN_EINVAL (with a hint) when the run has none (a CV candidate). */
int bn_runs_get_head(bn_store *s, int64_t id, bn_head *h, bn_error *err);

/* One overall metric of a run on a split; *found = 0 when absent. */
int bn_runs_get_metric(bn_store *s, int64_t run, const char *split, const char *metric,
                       double *value, int *found, bn_error *err);

/* The splits a run has metrics for, in the order they were recorded
 * (train, validation, test, cv, ...): *splits is malloc'ed, as each string. */
int bn_runs_get_splits(bn_store *s, int64_t run, char ***splits, int *n, bn_error *err);

/* A run's metrics on a split, rebuilt into m (k = r->k, arrays allocated;
 * bn_metrics_free). Absent values are NaN; *detail = 0 when the split has
 * no per-class rows or confusion matrix (the 'cv' means). */
int bn_runs_get_metrics(bn_store *s, const bn_run *r, const char *split, bn_metrics *m, int *detail,
                        bn_error *err);

/* Listing. A filter is "key OP value": key is one of id, sweep, featureset
 * or dataset (names; '=' matches a glob pattern such as 'vgg16*'), solver, role,
 * class_weight, standardize, C, seconds, chosen, or a metric name (on
 * `split`); OP is one of = != < <= > >=. Sort keys: the same names; metrics
 * sort best first, id and created newest first. */
typedef struct {
    const char *split;    /* metrics shown, sorted and filtered on (default "validation") */
    const char *sort;     /* default "id" */
    const char **filters; /* nfilters expressions */
    int nfilters;
    int limit; /* 0: all */
} bn_runs_query;

/* Called once per run in order; metrics holds accuracy, log_loss, roc_auc,
 * f1_macro on query->split (NaN when absent). */
typedef int (*bn_runs_row_fn)(void *ctx, const bn_run *r, const double metrics[4]);

int bn_runs_list(bn_store *s, const bn_runs_query *query, bn_runs_row_fn fn, void *ctx,
                 bn_error *err);

#endif
