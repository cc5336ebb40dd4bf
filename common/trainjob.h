/*
 * trainjob.h: one training job of `bottleneck-classify train` as a library
 * call that tests can make: load a feature set's splits, train a grid of
 * candidates, choose one, refit, and store the sweep, its runs, heads and
 * metrics in one transaction.
 *
 *   1. load the training split once (and validation and test), classes from
 *      the training labels (sorted, as scikit-learn's classes_);
 *   2. every candidate of the grid is trained on the training split and
 *      scored on validation, or scored by stratified K-fold cross-validation
 *      (folds made contiguous by one in-place row permutation, so no fold is
 *      ever copied);
 *   3. choose by the selection metric, ties to the lower log loss then the
 *      earlier candidate;
 *   4. optionally refit the choice on train + validation (always, on the
 *      whole training split, after cross-validation); test metrics for the
 *      final run;
 *   5. store everything in one transaction, after all training, so a long
 *      sweep never holds the database's write lock.
 *
 * The job never prints: what a program shows while it runs comes through the
 * optional callbacks of bn_trainjob_events, what it shows at the end is read
 * from the filled bn_trainjob. The program (classify/cmd_train.c) parses the
 * hyperparameter lists into the grid and prints.
 */
#ifndef BN_TRAINJOB_H
#define BN_TRAINJOB_H

#include "datasets.h"
#include "error.h"
#include "featureset.h"
#include "metrics.h"
#include "store.h"
#include "sweep.h"
#include "train.h"

#include <stdint.h>

typedef struct {
    bn_train_opts opts;
    bn_train_info info;
    bn_head head; /* without folds, and for the refit */
    int has_head;
    bn_metrics train_m, valid_m;
    int has_valid;
    double cv[BN_NMETRICS]; /* with folds: means over the held-out folds (bn_metrics_defs order) */
    int cv_n;
    double score, score_ll; /* the selection metric and the log loss it breaks ties with */
    int64_t run;            /* runs.id once stored */
} bn_trainjob_candidate;

struct bn_trainjob;

/* What a program may show while the job runs; any callback may be NULL. */
typedef struct {
    void *ctx;
    /* the splits are loaded (seconds since the start) */
    void (*loaded)(void *ctx, const struct bn_trainjob *j, double seconds);
    /* n binary lbfgs candidates that differ only in C trained together on
     * fold `fold` (-1: the whole training split) */
    void (*swept)(void *ctx, const struct bn_trainjob *j, int n, int fold, const bn_sweep_stats *st,
                  double seconds);
    /* candidate i is trained and scored */
    void (*scored)(void *ctx, const struct bn_trainjob *j, int i);
    /* the chosen candidate was trained again (j->refit) */
    void (*refitted)(void *ctx, const struct bn_trainjob *j);
} bn_trainjob_events;

typedef struct {
    const char *features;      /* feature set name or id; NULL: the database's only one */
    const char *dataset;       /* NULL: the dataset the feature set's vectors belong to */
    const char *train;         /* NULL: "train", or every row of a dataset without splits */
    const char *valid, *test;  /* NULL: "validation" / "test" when present; "none": none */
    const char *select;        /* the metric that chooses (metrics.h names) */
    const char *note;          /* stored with every run; may be NULL */
    int folds;                 /* K-fold cross-validation; 0: none */
    int refit;                 /* refit on train + validation */
    double holdout;            /* fraction of the training rows held out; 0: none */
    uint64_t seed;             /* folds and holdout (the grid's opts carry their own) */
    const bn_train_opts *grid; /* the candidates, ngrid >= 1, all of one solver */
    int ngrid;
    const bn_trainjob_events *events; /* NULL: silent */
} bn_trainjob_opts;

/* The job as it went; the strings point into the options or are literals,
 * so the options must outlive it. */
typedef struct bn_trainjob {
    const bn_trainjob_opts *o;
    bn_store *s;
    int64_t fs;
    char fsname[256];
    bn_dataset_info ds;       /* the dataset trained on */
    const char *train;        /* name of the training rows: the train option, 'all' (a dataset
                                 without split folders) or 'train' (what holdout leaves) */
    int all_rows;             /* trained on every row of the dataset (no split folders) */
    const char *valid, *test; /* NULL: none; valid is "holdout" with a holdout */
    int dim, k;
    char **classes; /* (k), owned by tr */
    bn_features tr, va, te;
    int *ytr, *yva, *yte;
    int folds;
    int folds_default; /* folds is the default of a dataset without splits, not --folds */
    int *fold_start;   /* (folds + 1) */
    bn_trainjob_candidate *cand;
    int ncand;
    int best;                    /* index of the chosen candidate */
    const char *select_on;       /* "cv", the validation split's name or the training one's */
    int do_refit;                /* refit is filled */
    bn_trainjob_candidate refit; /* the chosen candidate trained again */
    const char *refit_splits;    /* what the refit trained on, e.g. "train,validation" */
    char refit_names[512];
    bn_trainjob_candidate *final; /* &refit or &cand[best] */
    bn_metrics test_m;            /* the final run on the test split, when there is one */
    int64_t sweep;                /* sweeps.id once stored */
    double seconds;               /* from the start to the end of training */
} bn_trainjob;

/* Run the whole job on the open store s; on success everything is stored
 * (one transaction) and *j describes it. On failure nothing is stored and
 * err says why. Either way release *j with bn_trainjob_free. */
int bn_trainjob_run(bn_store *s, const bn_trainjob_opts *o, bn_trainjob *j, bn_error *err);

void bn_trainjob_free(bn_trainjob *j);

#endif
