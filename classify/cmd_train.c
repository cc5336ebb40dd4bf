/*
 * cmd_train.c: `bottleneck-classify train`.
 *
 *   1. load the training split once (and validation and test), classes from
 *      the training labels (sorted, as scikit-learn's classes_);
 *   2. one candidate per combination of the hyperparameter lists; each is
 *      trained on the training split and scored on validation, or scored by
 *      stratified K-fold cross-validation (folds made contiguous by one
 *      in-place row permutation, so no fold is ever copied);
 *   3. choose by --select, ties to the lower log loss then the earlier one;
 *   4. optionally refit the choice on train + validation (always, on the whole
 *      training split, after cross-validation); test metrics for the final run;
 *   5. store everything in one transaction, after all training, so a long
 *      sweep never holds the database's write lock.
 * lbfgs on two classes: candidates that differ only in C train together
 * (common/sweep.c: one pass over the rows per round serves them all; the
 * refit too). Other lbfgs/newton candidates warm-start from the previous
 * candidate's optimum (the optimum does not depend on the start; it only
 * arrives sooner).
 */
#include "classify.h"

#include "datasets.h"
#include "featureset.h"
#include "progress.h"
#include "sweep.h"
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CL_MAX_CANDIDATES 10000
#define CL_NCV 6

static const char *const cv_names[CL_NCV] = {"accuracy",        "log_loss",     "roc_auc",
                                             "precision_macro", "recall_macro", "f1_macro"};

typedef struct {
    bn_train_opts opts;
    bn_train_info info;
    bn_head head; /* without folds */
    int has_head;
    bn_metrics train_m, valid_m;
    int has_valid;
    double cv[CL_NCV]; /* with folds: means over the held-out folds */
    int cv_n;
    double score, score_ll;
    int64_t run;
} candidate;

typedef struct {
    double *v;
    int n;
} dlist;

/* Reads one item of a comma-separated list into *v; prints the problem and
 * returns CL_EXIT_USAGE when tok is not a valid item. */
typedef int (*item_fn)(const char *tok, const char *flag, const void *arg, double *v);

/* A comma-separated list -> out (n >= 1 values), each item read by item().
 * On failure out is empty (nothing to free) and the exit code is returned. */
static int parse_items(const char *text, const char *flag, item_fn item, const void *arg,
                       dlist *out) {
    out->v = NULL;
    out->n = 0;
    char *copy = strdup(text), *next = copy;
    if (!copy)
        return cl_fail("out of memory");
    int rc = 0;
    /* Every item counts: "1,,2" or "1," is a typo, not the list 1,2. */
    while (next) {
        char *tok = strsep(&next, ",");
        if (!*tok) {
            cl_failf("%s %s: an empty item in the list", flag, text);
            rc = CL_EXIT_USAGE;
            break;
        }
        double v;
        rc = item(tok, flag, arg, &v);
        if (rc)
            break;
        double *p = realloc(out->v, (size_t)(out->n + 1) * sizeof *p);
        if (!p) {
            rc = cl_fail("out of memory");
            break;
        }
        out->v = p;
        out->v[out->n++] = v;
    }
    free(copy);
    if (!rc && out->n == 0)
        rc = cl_failf("%s: empty list", flag);
    if (rc) {
        free(out->v);
        out->v = NULL;
        out->n = 0;
    }
    return rc;
}

/* A positive number; a positive integer up to 1e9 when *(int *)integer. */
static int number_item(const char *tok, const char *flag, const void *integer, double *v) {
    int whole = *(const int *)integer;
    char *end;
    *v = strtod(tok, &end);
    if (!*tok || *end || !(*v > 0) || !isfinite(*v) || (whole && (*v != floor(*v) || *v > 1e9))) {
        cl_failf("%s: '%s' is not a %s", flag, tok, whole ? "positive integer" : "positive number");
        return CL_EXIT_USAGE;
    }
    return 0;
}

/* words[0] -> 0, words[1] -> 1; "no"/"yes" also take false/0 and true/1. */
static int word_item(const char *tok, const char *flag, const void *words, double *v) {
    const char *no = ((const char *const *)words)[0], *yes = ((const char *const *)words)[1];
    if (strcmp(tok, no) == 0 ||
        (strcmp(no, "no") == 0 && (!strcmp(tok, "false") || !strcmp(tok, "0"))))
        *v = 0;
    else if (strcmp(tok, yes) == 0 ||
             (strcmp(yes, "yes") == 0 && (!strcmp(tok, "true") || !strcmp(tok, "1"))))
        *v = 1;
    else {
        cl_failf("%s: '%s': expected %s or %s", flag, tok, no, yes);
        return CL_EXIT_USAGE;
    }
    return 0;
}

/* "0.01,0.1,1" -> values; each must satisfy positive (or >= 1 when integer). */
static int parse_list(const char *text, const char *flag, int integer, dlist *out) {
    return parse_items(text, flag, number_item, &integer, out);
}

/* "none,balanced" or "yes,no" -> 0/1 values. */
static int parse_words(const char *text, const char *flag, const char *no, const char *yes,
                       dlist *out) {
    const char *const words[2] = {no, yes};
    return parse_items(text, flag, word_item, words, out);
}

/* Whether a split of dataset has rows with vectors in fs: 1, or 0 when none.
 * Stops at the first such row, found from the images' side (a count joined
 * from the vectors' side read every vector of fs: 10% of a 2,000-row sweep). */
static int64_t split_rows(bn_store *s, int64_t fs, int64_t dataset, const char *split) {
    sqlite3_stmt *q;
    int64_t n = -1;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT EXISTS (SELECT 1 FROM images i WHERE i.split = ?2"
                           " AND i.dataset = ?3 AND EXISTS (SELECT 1 FROM vectors v"
                           " WHERE v.featureset = ?1 AND v.sha256 = i.sha256))",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, fs);
        sqlite3_bind_text(q, 2, split, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 3, dataset);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

/* Resolve --valid/--test: explicit name, 'none', or the default name when
 * that split has rows. */
static const char *pick_split(bn_store *s, int64_t fs, int64_t dataset, const char *given,
                              const char *dflt) {
    if (given)
        return strcmp(given, "none") == 0 ? NULL : given;
    return split_rows(s, fs, dataset, dflt) > 0 ? dflt : NULL;
}

/* Is a better than b for metric? NaN is worst; ties: lower log loss. */
static int better(const candidate *a, const candidate *b, int higher) {
    if (isnan(b->score))
        return !isnan(a->score);
    if (isnan(a->score))
        return 0;
    if (a->score != b->score)
        return higher ? a->score > b->score : a->score < b->score;
    return a->score_ll < b->score_ll;
}

static int predict_metrics(const bn_head *h, const float *x, const int *y, int n, bn_metrics *m,
                           bn_error *err) {
    double *p = malloc((size_t)n * h->k * sizeof *p);
    if (!p)
        return bn_fail(err, BN_ENOMEM, "out of memory for %d x %d probabilities", n, h->k);
    int rc = bn_head_predict(h, x, n, p, err);
    if (rc == BN_OK)
        rc = bn_metrics_compute(y, p, n, h->k, m, err);
    free(p);
    return rc;
}

typedef struct {
    const cl_opts *o;
    bn_store *s;
    int64_t fs;
    bn_dataset_info ds; /* the dataset trained on */
    const char *train;  /* name of the training rows: --train, 'all' (a dataset without
                           split folders) or 'train' (what --holdout leaves) */
    int all_rows;       /* train on every row of the dataset (no split folders) */
    char fsname[256];
    int dim, k;
    char **classes;
    bn_features tr, va, te;
    int *ytr, *yva, *yte;
    const char *valid, *test;
    int folds;
    int *fold_start; /* (folds + 1) */
    candidate *cand;
    int ncand;
} train_job;

/* The vectors of split `name` into *f and their labels as indices of the
 * training classes into *y (validation, test). 0, or the problem printed
 * and CL_EXIT_FATAL; what was allocated is freed with the job. */
static int load_split(train_job *j, const char *name, bn_features *f, int **y) {
    bn_error err;
    bn_rows rows = {.dataset = j->ds.id, .split = name};
    if (bn_features_load_rows(j->s, j->fs, &rows, f, &err))
        return cl_fail(err.msg);
    if (!(*y = malloc((size_t)f->n * sizeof **y)))
        return cl_fail("out of memory");
    if (bn_features_encode(f, j->classes, j->k, *y, name, &err))
        return cl_fail(err.msg);
    return 0;
}

/* The training rows of fold f (all of them when f < 0). */
static bn_data fold_data(const train_job *j, int f) {
    bn_data d = {.dim = j->dim, .k = j->k, .nblocks = 0};
    int a = f < 0 ? 0 : j->fold_start[f], b = f < 0 ? 0 : j->fold_start[f + 1];
    if (f < 0 || a > 0)
        d.block[d.nblocks++] = (bn_block){j->tr.x, j->ytr, f < 0 ? j->tr.n : a};
    if (f >= 0 && b < j->tr.n)
        d.block[d.nblocks++] = (bn_block){j->tr.x + (size_t)b * j->dim, j->ytr + b, j->tr.n - b};
    return d;
}

/* Binary lbfgs candidates: those that share class weights and
 * standardisation, i.e. differ only in C, train together on each fold
 * (sweep.h): models[i * nf + f], infos likewise, nf = max(folds, 1). */
static int sweep_candidates(train_job *j, bn_model *models, bn_train_info *infos, bn_error *err) {
    int nf = j->folds ? j->folds : 1, n = 0, rc = BN_OK;
    int *idx = malloc((size_t)j->ncand * sizeof *idx);
    double *Cs = malloc((size_t)j->ncand * sizeof *Cs);
    bn_model *m = calloc((size_t)j->ncand, sizeof *m);
    bn_train_info *in = calloc((size_t)j->ncand, sizeof *in);
    if (!idx || !Cs || !m || !in)
        rc = bn_fail(err, BN_ENOMEM, "out of memory for %d candidates", j->ncand);
    for (int group = 0; group < 4 && rc == BN_OK; group++) {
        n = 0;
        for (int i = 0; i < j->ncand; i++)
            if (j->cand[i].opts.balanced == (group & 1) &&
                j->cand[i].opts.standardize == group >> 1) {
                idx[n] = i;
                Cs[n++] = j->cand[i].opts.C;
            }
        for (int f = 0; f < nf && n > 0 && rc == BN_OK; f++) {
            bn_data d = fold_data(j, j->folds ? f : -1);
            bn_sweep_stats st;
            double t0 = bn_now();
            rc = bn_sweep_train(&d, &j->cand[idx[0]].opts, Cs, n, m, in, &st, err);
            if (rc == BN_OK && !j->o->quiet) {
                char fold[32] = "";
                if (j->folds)
                    snprintf(fold, sizeof fold, " (fold %d of %d)", f + 1, j->folds);
                fprintf(stderr,
                        "sweep of %d candidates%s: %d passes over the rows (%d in double) on %s%d "
                        "columns, %.2f s (setup %.2f s)\n",
                        n, fold, st.rounds, st.double_rounds, st.row_space ? "a row space of " : "",
                        st.rank, bn_now() - t0, st.setup_seconds);
            }
            for (int i = 0; i < n && rc == BN_OK; i++) {
                models[(size_t)idx[i] * nf + f] = m[i];
                infos[(size_t)idx[i] * nf + f] = in[i];
            }
        }
    }
    free(idx), free(Cs), free(m), free(in);
    return rc;
}

/* Train candidate c on the training split (or take the model the sweep
 * trained: `trained`), then its metrics on train and validation. */
static int fit_candidate(train_job *j, candidate *c, bn_model *warm, const bn_model *trained,
                         const bn_train_info *trained_info, bn_error *err) {
    bn_data dtr = fold_data(j, -1);
    bn_data dva = {.dim = j->dim, .k = j->k, .nblocks = 1};
    if (j->valid)
        dva.block[0] = (bn_block){j->va.x, j->yva, j->va.n};
    int rc = BN_OK;
    if (trained)
        c->info = *trained_info;
    else
        rc = bn_train(&dtr, j->valid ? &dva : NULL, &c->opts, warm, &c->info, err);
    if (rc == BN_OK)
        rc = bn_head_from_model(trained ? trained : warm, &c->head, err);
    if (rc)
        return rc;
    c->has_head = 1;
    rc = predict_metrics(&c->head, j->tr.x, j->ytr, j->tr.n, &c->train_m, err);
    if (rc == BN_OK && j->valid) {
        rc = predict_metrics(&c->head, j->va.x, j->yva, j->va.n, &c->valid_m, err);
        c->has_valid = rc == BN_OK;
    }
    return rc;
}

/* Cross-validation of candidate c: trained on each fold (or the sweep's
 * models trained[f]), scored on the held-out rows. */
static int cv_candidate(train_job *j, candidate *c, bn_model *warm, const bn_model *trained,
                        const bn_train_info *trained_info, bn_error *err) {
    memset(c->cv, 0, sizeof c->cv);
    c->info = (bn_train_info){.converged = 1};
    for (int f = 0; f < j->folds; f++) {
        int a = j->fold_start[f], b = j->fold_start[f + 1];
        bn_data d = fold_data(j, f);
        bn_train_info info;
        int rc = BN_OK;
        if (trained)
            info = trained_info[f];
        else
            rc = bn_train(&d, NULL, &c->opts, &warm[f], &info, err);
        bn_head h;
        if (rc == BN_OK)
            rc = bn_head_from_model(trained ? &trained[f] : &warm[f], &h, err);
        if (rc)
            return rc;
        bn_metrics m;
        rc = predict_metrics(&h, j->tr.x + (size_t)a * j->dim, j->ytr + a, b - a, &m, err);
        bn_head_free(&h);
        if (rc)
            return rc;
        for (int i = 0; i < CL_NCV; i++)
            c->cv[i] += bn_metrics_get(&m, cv_names[i]) / j->folds;
        bn_metrics_free(&m);
        c->info.seconds += info.seconds;
        if (info.iterations > c->info.iterations)
            c->info.iterations = info.iterations;
        c->info.converged &= info.converged;
    }
    c->info.objective = NAN;
    c->cv_n = j->tr.n;
    return BN_OK;
}

/* Shuffle a[0..m) in place (Fisher-Yates, splitmix64 from *state). */
static void shuffle_rows(int *a, int m, uint64_t *state) {
    for (int i = m - 1; i > 0; i--) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        int r = (int)(((unsigned __int128)z * (uint64_t)(i + 1)) >> 64);
        int t = a[i];
        a[i] = a[r];
        a[r] = t;
    }
}

/* Stratified folds: each class's rows shuffled (seeded) and dealt round
 * robin; then the rows are permuted so fold f is [fold_start[f], fold_start[f+1]). */
static int make_folds(train_job *j, bn_error *err) {
    int n = j->tr.n, K = j->folds;
    int *fold = malloc((size_t)n * sizeof *fold), *perm = malloc((size_t)n * sizeof *perm);
    int *rows = malloc((size_t)n * sizeof *rows);
    j->fold_start = calloc((size_t)K + 1, sizeof *j->fold_start);
    if (!fold || !perm || !rows || !j->fold_start) {
        free(fold), free(perm), free(rows);
        return bn_fail(err, BN_ENOMEM, "out of memory for folds");
    }
    uint64_t state = j->o->seed * 0x9e3779b97f4a7c15ULL + 0x243f6a8885a308d3ULL;
    for (int c = 0; c < j->tr.nlabels; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (j->tr.label[i] == c)
                rows[m++] = i;
        if (m < K) {
            free(fold), free(perm), free(rows);
            return bn_fail(err, BN_EINVAL,
                           "--folds %d: class '%s' has only %d training rows; each fold needs "
                           "one of every class",
                           K, j->tr.labels[c], m);
        }
        shuffle_rows(rows, m, &state);
        for (int i = 0; i < m; i++)
            fold[rows[i]] = i % K;
    }
    int p = 0;
    for (int f = 0; f < K; f++) {
        j->fold_start[f] = p;
        for (int i = 0; i < n; i++)
            if (fold[i] == f)
                perm[p++] = i;
    }
    j->fold_start[K] = n;
    int rc = bn_features_permute(&j->tr, perm, err);
    free(fold), free(perm), free(rows);
    return rc;
}

/* --holdout F: hold out round(F * m) of each class's m training rows
 * (shuffled with the seed, at least one row kept on each side) into j->va,
 * as scikit-learn's train_test_split(stratify=y). */
static int make_holdout(train_job *j, bn_error *err) {
    int n = j->tr.n;
    int *perm = malloc((size_t)n * sizeof *perm), *rows = malloc((size_t)n * sizeof *rows);
    unsigned char *held = calloc((size_t)n, 1);
    if (!perm || !rows || !held) {
        free(perm), free(rows), free(held);
        return bn_fail(err, BN_ENOMEM, "out of memory for the holdout");
    }
    uint64_t state = j->o->seed * 0x9e3779b97f4a7c15ULL + 0x13198a2e03707344ULL;
    int nheld = 0;
    for (int c = 0; c < j->tr.nlabels; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (j->tr.label[i] == c)
                rows[m++] = i;
        int h = (int)floor(j->o->holdout * m + 0.5);
        if (h >= m)
            h = m - 1;
        if (h < 1 && m >= 2)
            h = 1;
        shuffle_rows(rows, m, &state);
        for (int i = 0; i < h; i++)
            held[rows[i]] = 1;
        nheld += h;
    }
    int p = 0;
    for (int i = 0; i < n; i++) /* kept rows first, then the held-out ones, each in path order */
        if (!held[i])
            perm[p++] = i;
    for (int i = 0; i < n; i++)
        if (held[i])
            perm[p++] = i;
    int rc = bn_features_permute(&j->tr, perm, err);
    if (rc == BN_OK)
        rc = bn_features_split_tail(&j->tr, n - nheld, &j->va, err);
    free(perm), free(rows), free(held);
    return rc;
}

static void json_candidate(FILE *f, const train_job *j, const candidate *c) {
    fprintf(f, "{\"run\":%lld,\"solver\":\"%s\",\"C\":", (long long)c->run,
            bn_solver_name(c->opts.solver));
    bn_json_number(f, c->opts.C);
    fprintf(f, ",\"class_weight\":\"%s\",\"standardize\":%s",
            c->opts.balanced ? "balanced" : "none", c->opts.standardize ? "true" : "false");
    if (c->opts.solver == BN_SOLVER_SGD || c->opts.solver == BN_SOLVER_ADAM) {
        fputs(",\"lr\":", f);
        bn_json_number(f, c->opts.lr);
        fprintf(f, ",\"batch_size\":%d,\"best_epoch\":%d", c->opts.batch_size, c->info.best_epoch);
    }
    fprintf(f, ",\"iterations\":%d,\"converged\":%s,\"objective\":", c->info.iterations,
            c->info.converged ? "true" : "false");
    bn_json_number(f, c->info.objective);
    fputs(",\"seconds\":", f);
    bn_json_number(f, c->info.seconds);
    fputs(",\"metrics\":{", f);
    if (j->folds) {
        fprintf(f, "\"cv\":{\"n\":%d", c->cv_n);
        for (int i = 0; i < CL_NCV; i++) {
            fprintf(f, ",\"%s\":", cv_names[i]);
            bn_json_number(f, c->cv[i]);
        }
        fputc('}', f);
    } else {
        fprintf(f, "\"%s\":", j->train);
        cl_json_metrics(f, &c->train_m, j->classes, 1);
        if (c->has_valid) {
            fputc(',', f);
            bn_json_string(f, j->valid);
            fputc(':', f);
            cl_json_metrics(f, &c->valid_m, j->classes, 1);
        }
    }
    fputs("}}", f);
}

static void free_job(train_job *j) {
    for (int i = 0; i < j->ncand; i++) {
        bn_head_free(&j->cand[i].head);
        bn_metrics_free(&j->cand[i].train_m);
        bn_metrics_free(&j->cand[i].valid_m);
    }
    free(j->cand);
    bn_features_free(&j->tr);
    bn_features_free(&j->va);
    bn_features_free(&j->te);
    free(j->ytr), free(j->yva), free(j->yte);
    free(j->fold_start);
}

int cl_train(const cl_opts *o) {
    double t0 = bn_now();
    bn_error err;
    bn_error_clear(&err);
    train_job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    int status = CL_EXIT_FATAL;

    /* Hyperparameter lists. */
    bn_solver solver;
    if (bn_solver_parse(o->solver, &solver)) {
        cl_failf("--solver %s: expected lbfgs, newton, sgd or adam", o->solver);
        return CL_EXIT_USAGE;
    }
    int minibatch = solver == BN_SOLVER_SGD || solver == BN_SOLVER_ADAM;
    if (!minibatch && (o->lr || o->batch_size)) {
        cl_failf("--lr and --batch-size apply to --solver sgd or adam, not %s", o->solver);
        return CL_EXIT_USAGE;
    }
    dlist Cs = {0}, cws = {0}, stds = {0}, lrs = {0}, bss = {0};
    if (parse_list(o->l2  ? o->l2
                   : o->C ? o->C
                          : "1",
                   o->l2 ? "--l2" : "--C", 0, &Cs) ||
        parse_words(o->class_weight ? o->class_weight : "none", "--class-weight", "none",
                    "balanced", &cws) ||
        parse_words(o->standardize ? o->standardize : "no", "--standardize", "no", "yes", &stds) ||
        parse_list(o->lr ? o->lr : "0.001", "--lr", 0, &lrs) ||
        parse_list(o->batch_size ? o->batch_size : "32", "--batch-size", 1, &bss)) {
        free(Cs.v), free(cws.v), free(stds.v), free(lrs.v), free(bss.v);
        return CL_EXIT_USAGE;
    }
    long total = (long)Cs.n * cws.n * stds.n * lrs.n * bss.n;
    if (total > CL_MAX_CANDIDATES) {
        free(Cs.v), free(cws.v), free(stds.v), free(lrs.v), free(bss.v);
        return cl_failf("%ld combinations: at most %d per sweep", total, CL_MAX_CANDIDATES);
    }
    j.cand = calloc((size_t)total, sizeof *j.cand);
    if (!j.cand)
        return cl_fail("out of memory");
    for (int a = 0; a < Cs.n; a++)
        for (int b = 0; b < cws.n; b++)
            for (int c = 0; c < stds.n; c++)
                for (int d = 0; d < lrs.n; d++)
                    for (int e = 0; e < bss.n; e++) {
                        bn_train_opts *t = &j.cand[j.ncand++].opts;
                        bn_train_opts_default(t);
                        t->solver = solver;
                        t->C = o->l2 ? 1.0 / Cs.v[a] : Cs.v[a];
                        t->balanced = (int)cws.v[b];
                        t->standardize = (int)stds.v[c];
                        t->lr = lrs.v[d];
                        t->batch_size = (int)bss.v[e];
                        t->max_iter = o->max_iter;
                        t->tol = o->tol;
                        t->epochs = o->epochs;
                        t->patience = o->patience;
                        t->seed = o->seed;
                    }
    free(Cs.v), free(cws.v), free(stds.v), free(lrs.v), free(bss.v);

    /* Options that exclude each other: checked before anything is opened. */
    if (o->holdout > 0 && (o->valid || o->folds)) {
        cl_fail("--holdout makes the validation rows: it goes with neither --valid nor --folds");
        free(j.cand);
        return CL_EXIT_USAGE;
    }

    /* Data. */
    if (cl_open(o, 0, &j.s))
        goto done;
    if (cl_featureset(j.s, o->features, &j.fs, &j.dim, j.fsname, sizeof j.fsname, &err)) {
        cl_fail(err.msg);
        goto done;
    }
    if (o->dataset ? bn_datasets_find(j.s, o->dataset, &j.ds, &err)
                   : bn_datasets_pick(j.s, j.fs, &j.ds, &err)) {
        cl_fail(err.msg);
        goto done;
    }
    /* A dataset without split folders (cat/, dog/ only): every row is a
     * training row, scored by cross-validation unless --holdout says. */
    j.train = o->train ? o->train : "train";
    j.all_rows = !o->train && split_rows(j.s, j.fs, j.ds.id, "train") == 0;
    if (j.all_rows && (o->valid || o->test)) {
        cl_failf("dataset '%s' has no split 'train' to go with --valid or --test: name the "
                 "training split with --train, or use --holdout F or --folds K",
                 j.ds.name);
        goto done;
    }
    if (j.all_rows) {
        j.valid = j.test = NULL;
        if (!o->holdout)
            j.train = "all";
    } else {
        j.valid = o->holdout > 0 ? NULL : pick_split(j.s, j.fs, j.ds.id, o->valid, "validation");
        j.test = pick_split(j.s, j.fs, j.ds.id, o->test, "test");
    }
    if ((j.valid && strcmp(j.valid, j.train) == 0) || (j.test && strcmp(j.test, j.train) == 0) ||
        (j.valid && j.test && strcmp(j.valid, j.test) == 0)) {
        cl_failf("--train, --valid and --test must name different splits ('%s', '%s', '%s')",
                 j.train, j.valid ? j.valid : "none", j.test ? j.test : "none");
        goto done;
    }
    j.folds = o->folds;
    if (j.all_rows && !j.folds && !o->holdout)
        j.folds = 5; /* scikit-learn's cross_val_score default */
    if (j.ncand > 1 && !j.valid && !j.folds && !o->holdout) {
        cl_failf("choosing among %d candidates needs a validation split (--valid SPLIT; feature "
                 "set '%s' has none named 'validation'), --holdout F or --folds K",
                 j.ncand, j.fsname);
        goto done;
    }
    if (o->refit && !j.valid && !j.folds && !o->holdout) {
        cl_fail("--refit trains on train + validation: it needs a validation split (--valid) or "
                "--holdout F");
        goto done;
    }
    bn_rows rows = {.dataset = j.ds.id, .split = j.all_rows ? NULL : j.train};
    if (bn_features_load_rows(j.s, j.fs, &rows, &j.tr, &err)) {
        cl_fail(err.msg);
        goto done;
    }
    for (int i = 0; i < j.tr.n; i++)
        if (j.tr.label[i] < 0) {
            cl_failf("%s of dataset '%s' has no label (an image given to predict outside class "
                     "folders): a classifier trains on labelled images",
                     j.tr.path[i], j.ds.name);
            goto done;
        }
    j.k = j.tr.nlabels;
    j.classes = j.tr.labels;
    if (j.k < 2) {
        cl_failf("split '%s' of feature set '%s' has a single class ('%s'): a classifier needs "
                 "at least two",
                 j.train, j.fsname, j.classes[0]);
        goto done;
    }
    if (o->holdout > 0) {
        if (make_holdout(&j, &err)) {
            cl_fail(err.msg);
            goto done;
        }
        j.valid = "holdout";
        if (!(j.yva = malloc((size_t)(j.va.n ? j.va.n : 1) * sizeof *j.yva)) ||
            bn_features_encode(&j.va, j.classes, j.k, j.yva, j.valid, &err)) {
            cl_fail(j.yva ? err.msg : "out of memory");
            goto done;
        }
        if (j.va.n == 0) {
            cl_failf("--holdout %g: no row held out (each class needs two rows or more)",
                     o->holdout);
            goto done;
        }
    }
    if (j.folds > j.tr.n) {
        cl_failf("--folds %d: the training split has only %d rows", j.folds, j.tr.n);
        goto done;
    }
    if (j.folds && make_folds(&j, &err)) {
        cl_fail(err.msg);
        goto done;
    }
    j.ytr = malloc((size_t)j.tr.n * sizeof *j.ytr);
    if (!j.ytr || bn_features_encode(&j.tr, j.classes, j.k, j.ytr, j.train, &err)) {
        cl_fail(j.ytr ? err.msg : "out of memory");
        goto done;
    }
    if ((j.valid && !o->holdout && load_split(&j, j.valid, &j.va, &j.yva)) ||
        (j.test && load_split(&j, j.test, &j.te, &j.yte)))
        goto done;
    if (!o->quiet) {
        fprintf(stderr, "feature set '%s' (id %lld, dim %d), dataset '%s': %s %d rows", j.fsname,
                (long long)j.fs, j.dim, j.ds.name, j.train, j.tr.n);
        if (j.valid)
            fprintf(stderr, ", %s %d", j.valid, j.va.n);
        if (j.test)
            fprintf(stderr, ", %s %d", j.test, j.te.n);
        fprintf(stderr, "; %d classes (%s%s%s); loaded in %.1f s\n", j.k, j.classes[0],
                j.k > 2 ? ", ..., " : ", ", j.classes[j.k - 1], bn_now() - t0);
    }

    /* Candidates. */
    const char *select_on = j.folds ? "cv" : j.valid ? j.valid : j.train;
    int higher = bn_metric_higher_is_better(o->select);
    bn_model *warm = calloc((size_t)(j.folds ? j.folds : 1), sizeof *warm);
    if (!warm) {
        cl_fail("out of memory");
        goto done;
    }
    int best = -1, rc = BN_OK, nf = j.folds ? j.folds : 1;
    bn_data all = {.dim = j.dim, .k = j.k, .nblocks = 0};
    bn_model *swept = NULL;
    bn_train_info *swept_info = NULL;
    if (bn_sweep_supported(&all, &j.cand[0].opts)) {
        swept = calloc((size_t)j.ncand * nf, sizeof *swept);
        swept_info = calloc((size_t)j.ncand * nf, sizeof *swept_info);
        rc = swept && swept_info ? sweep_candidates(&j, swept, swept_info, &err)
                                 : bn_fail(&err, BN_ENOMEM, "out of memory");
    }
    for (int i = 0; i < j.ncand && rc == BN_OK; i++) {
        candidate *c = &j.cand[i];
        const bn_model *tm = swept ? &swept[(size_t)i * nf] : NULL;
        const bn_train_info *ti = swept ? &swept_info[(size_t)i * nf] : NULL;
        rc = j.folds ? cv_candidate(&j, c, warm, tm, ti, &err)
                     : fit_candidate(&j, c, warm, tm, ti, &err);
        if (rc)
            break;
        const bn_metrics *sm = j.valid ? &c->valid_m : &c->train_m;
        if (j.folds) {
            for (int m = 0; m < CL_NCV; m++)
                if (strcmp(cv_names[m], o->select) == 0)
                    c->score = c->cv[m];
            c->score_ll = c->cv[1];
        } else {
            c->score = bn_metrics_get(sm, o->select);
            c->score_ll = sm->log_loss;
        }
        if (best < 0 || better(c, &j.cand[best], higher))
            best = i;
        if (!o->quiet) {
            char desc[160], a[32], b[32];
            cl_describe_opts(desc, sizeof desc, &c->opts);
            fprintf(stderr, "[%d/%d] %s: %s %s %s, log loss %s (%d %s, %.2f s)%s\n", i + 1, j.ncand,
                    desc, select_on, o->select, cl_num(a, sizeof a, c->score),
                    cl_num(b, sizeof b, c->score_ll), c->info.iterations,
                    minibatch ? "epochs" : "iterations", c->info.seconds,
                    !minibatch && !c->info.converged ? " (not converged: raise --max-iter)" : "");
        }
    }
    for (int i = 0; swept && i < j.ncand * nf; i++)
        bn_model_free(&swept[i]);
    free(swept), free(swept_info);
    if (rc) {
        for (int f = 0; f < (j.folds ? j.folds : 1); f++)
            bn_model_free(&warm[f]);
        free(warm);
        cl_fail(err.msg);
        goto done;
    }

    /* Refit. */
    candidate refit;
    memset(&refit, 0, sizeof refit);
    int do_refit = j.folds || o->refit;
    const char *refit_splits = j.train;
    char refit_names[512];
    if (do_refit) {
        refit.opts = j.cand[best].opts;
        if (minibatch && j.cand[best].info.best_epoch > 0)
            refit.opts.epochs = j.cand[best].info.best_epoch;
        bn_data d = {.dim = j.dim, .k = j.k, .nblocks = 1};
        d.block[0] = (bn_block){j.tr.x, j.ytr, j.tr.n};
        if (o->refit && j.valid) {
            d.block[d.nblocks++] = (bn_block){j.va.x, j.yva, j.va.n};
            snprintf(refit_names, sizeof refit_names, "%s,%s", j.train, j.valid);
            refit_splits = refit_names;
        }
        bn_model m = {0};
        if (bn_sweep_supported(&d, &refit.opts))
            rc = bn_sweep_train(&d, &refit.opts, &refit.opts.C, 1, &m, &refit.info, NULL, &err);
        else
            rc = bn_train(&d, NULL, &refit.opts, j.folds ? &m : &warm[0], &refit.info, &err);
        if (rc == BN_OK)
            rc = bn_head_from_model(j.folds || bn_sweep_supported(&d, &refit.opts) ? &m : &warm[0],
                                    &refit.head, &err);
        bn_model_free(&m);
        if (rc == BN_OK) {
            refit.has_head = 1;
            rc = predict_metrics(&refit.head, j.tr.x, j.ytr, j.tr.n, &refit.train_m, &err);
        }
        if (rc == BN_OK && j.valid) {
            rc = predict_metrics(&refit.head, j.va.x, j.yva, j.va.n, &refit.valid_m, &err);
            refit.has_valid = rc == BN_OK;
        }
        if (!o->quiet && rc == BN_OK)
            fprintf(stderr, "refit on %s: %d %s, %.2f s\n", refit_splits, refit.info.iterations,
                    minibatch ? "epochs" : "iterations", refit.info.seconds);
    }
    for (int f = 0; f < (j.folds ? j.folds : 1); f++)
        bn_model_free(&warm[f]);
    free(warm);
    candidate *final = do_refit ? &refit : &j.cand[best];
    bn_metrics test_m;
    memset(&test_m, 0, sizeof test_m);
    if (rc == BN_OK && j.test)
        rc = predict_metrics(&final->head, j.te.x, j.yte, j.te.n, &test_m, &err);
    if (rc) {
        bn_head_free(&refit.head);
        bn_metrics_free(&refit.train_m);
        bn_metrics_free(&refit.valid_m);
        cl_fail(err.msg);
        goto done;
    }

    /* Store. */
    double seconds = bn_now() - t0;
    int64_t sweep = 0;
    rc = bn_store_begin(j.s, &err);
    if (rc == BN_OK)
        rc = bn_runs_sweep_create(j.s, j.fs, j.ds.id, o->select, select_on, j.folds, o->holdout,
                                  j.ncand, &sweep, &err);
    if (rc == BN_OK && o->holdout > 0)
        rc = bn_runs_put_holdout(j.s, sweep, j.va.image, j.va.n, &err);
    for (int i = 0; i < j.ncand + do_refit && rc == BN_OK; i++) {
        candidate *c = i < j.ncand ? &j.cand[i] : &refit;
        bn_run r;
        memset(&r, 0, sizeof r);
        r.sweep = sweep;
        r.featureset = j.fs;
        r.dataset = j.ds.id;
        r.role = i < j.ncand ? "candidate" : "refit";
        r.train_splits = (char *)(i < j.ncand ? j.train : refit_splits);
        r.folds = i < j.ncand ? j.folds : 0;
        r.opts = c->opts;
        r.k = j.k;
        r.classes = j.classes;
        r.n_train = j.tr.n + (i == j.ncand && o->refit && j.valid ? j.va.n : 0);
        r.dim = j.dim;
        r.info = c->info;
        r.chosen = i == best;
        r.note = (char *)o->note;
        rc = bn_runs_put(j.s, &r, &c->run, &err);
        if (rc == BN_OK && c->has_head)
            rc = bn_runs_put_head(j.s, c->run, &c->head, &err);
        if (rc == BN_OK && c->has_head)
            rc = bn_runs_put_metrics(j.s, c->run, j.train, &c->train_m, j.classes, &err);
        if (rc == BN_OK && c->has_valid)
            rc = bn_runs_put_metrics(j.s, c->run, j.valid, &c->valid_m, j.classes, &err);
        if (rc == BN_OK && i < j.ncand && j.folds) {
            for (int m = 0; m < CL_NCV && rc == BN_OK; m++)
                rc = bn_runs_put_metric(j.s, c->run, "cv", cv_names[m], c->cv[m], &err);
            if (rc == BN_OK)
                rc = bn_runs_put_metric(j.s, c->run, "cv", "n", c->cv_n, &err);
        }
        if (rc == BN_OK && c == final && j.test)
            rc = bn_runs_put_metrics(j.s, c->run, j.test, &test_m, j.classes, &err);
    }
    if (rc == BN_OK)
        rc = bn_runs_sweep_finish(j.s, sweep, j.cand[best].run, final->run, seconds, &err);
    if (rc == BN_OK)
        rc = bn_store_commit(j.s, &err);
    else
        bn_store_rollback(j.s);
    if (rc) {
        cl_fail(err.msg);
    } else if (o->json) {
        printf("{\"sweep\":%lld,\"featureset\":", (long long)sweep);
        bn_json_string(stdout, j.fsname);
        printf(",\"featureset_id\":%lld,\"dataset\":", (long long)j.fs);
        bn_json_string(stdout, j.ds.name);
        printf(",\"dim\":%d,\"holdout\":", j.dim);
        bn_json_number(stdout, o->holdout > 0 ? o->holdout : NAN);
        printf(",\"classes\":[");
        for (int c = 0; c < j.k; c++) {
            if (c)
                putchar(',');
            bn_json_string(stdout, j.classes[c]);
        }
        printf("],\"train\":");
        bn_json_string(stdout, j.train);
        printf(",\"valid\":");
        if (j.valid)
            bn_json_string(stdout, j.valid);
        else
            printf("null");
        printf(",\"test\":");
        if (j.test)
            bn_json_string(stdout, j.test);
        else
            printf("null");
        printf(",\"folds\":%d,\"select_by\":\"%s\",\"select_on\":", j.folds, o->select);
        bn_json_string(stdout, select_on);
        printf(",\"seconds\":%.3f,\"candidates\":[", seconds);
        for (int i = 0; i < j.ncand; i++) {
            if (i)
                putchar(',');
            json_candidate(stdout, &j, &j.cand[i]);
        }
        printf("],\"chosen\":%lld,\"final\":%lld,\"final_trained_on\":",
               (long long)j.cand[best].run, (long long) final->run);
        bn_json_string(stdout, do_refit ? refit_splits : j.train);
        printf(",\"final_metrics\":{");
        int comma = 0;
        if (final->has_valid) {
            bn_json_string(stdout, j.valid);
            putchar(':');
            cl_json_metrics(stdout, &final->valid_m, j.classes, 1);
            comma = 1;
        }
        if (j.test) {
            if (comma)
                putchar(',');
            bn_json_string(stdout, j.test);
            putchar(':');
            cl_json_metrics(stdout, &test_m, j.classes, 1);
        }
        printf("}}\n");
        status = 0;
    } else {
        char a[32], b[32], cc[32];
        printf("sweep %lld: %d candidate%s on feature set '%s', chosen by %s on %s\n",
               (long long)sweep, j.ncand, j.ncand == 1 ? "" : "s", j.fsname, o->select, select_on);
        printf("  %5s  %-40s  %9s  %9s  %9s  %6s  %8s\n", "run", "hyperparameters", "accuracy",
               "log_loss", "roc_auc", "iters", "seconds");
        for (int i = 0; i < j.ncand; i++) {
            candidate *c = &j.cand[i];
            char desc[160];
            cl_describe_opts(desc, sizeof desc, &c->opts);
            double acc = j.folds        ? c->cv[0]
                         : c->has_valid ? c->valid_m.accuracy
                                        : c->train_m.accuracy;
            double ll = j.folds        ? c->cv[1]
                        : c->has_valid ? c->valid_m.log_loss
                                       : c->train_m.log_loss;
            double auc = j.folds        ? c->cv[2]
                         : c->has_valid ? c->valid_m.roc_auc
                                        : c->train_m.roc_auc;
            printf("%c %5lld  %-40.40s  %9s  %9s  %9s  %6d  %8.2f\n", i == best ? '*' : ' ',
                   (long long)c->run, desc, cl_num(a, sizeof a, acc), cl_num(b, sizeof b, ll),
                   cl_num(cc, sizeof cc, auc), c->info.iterations, c->info.seconds);
        }
        printf("  (metrics on %s; * chosen)\n", select_on);
        char desc[160];
        cl_describe_opts(desc, sizeof desc, &final->opts);
        printf("final: run %lld (%s), trained on %s\n", (long long) final->run, desc,
               do_refit ? refit_splits : j.train);
        char title[300];
        if (final->has_valid) {
            snprintf(title, sizeof title, "%s%s", j.valid,
                     do_refit && o->refit ? " (part of the training data)" : "");
            cl_print_metrics(stdout, title, &final->valid_m, j.classes, 1);
        }
        if (j.test)
            cl_print_metrics(stdout, j.test, &test_m, j.classes, 1);
        if (!final->has_valid && !j.test) {
            snprintf(title, sizeof title, "%s (training rows)", j.train);
            cl_print_metrics(stdout, title, &final->train_m, j.classes, 1);
        }
        printf("%.1f s in all\n", seconds);
        status = 0;
    }
    bn_metrics_free(&test_m);
    bn_head_free(&refit.head);
    bn_metrics_free(&refit.train_m);
    bn_metrics_free(&refit.valid_m);
done:
    free_job(&j);
    bn_store_close(j.s);
    return status;
}
