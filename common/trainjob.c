/*
 * trainjob.c: one `classify train` job (trainjob.h): data, candidates,
 * choice, refit, storage. Exports bn_trainjob_run and bn_trainjob_free.
 *
 * lbfgs on two classes: candidates that differ only in C train together
 * (sweep.c: one pass over the rows per round serves them all; the refit too).
 * Other lbfgs/newton candidates warm-start from the previous candidate's
 * optimum (the optimum does not depend on the start; it only arrives sooner).
 */
#include "trainjob.h"

#include "progress.h"
#include "runs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Tell the program, when it listens. */
#define EVENT(j, name, ...)                                                                        \
    do {                                                                                           \
        if ((j)->o->events && (j)->o->events->name)                                                \
            (j)->o->events->name((j)->o->events->ctx, (j), ##__VA_ARGS__);                         \
    } while (0)

/* Whether a split of dataset has rows with vectors in fs: 1, or 0 when none
 * (-1 on error). Stops at the first such row, found from the images' side (a
 * count joined from the vectors' side read every vector of fs: 10% of a
 * 2,000-row sweep). */
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

/* Resolve the valid/test options: explicit name, 'none', or the default name
 * when that split has rows. */
static const char *pick_split(bn_store *s, int64_t fs, int64_t dataset, const char *given,
                              const char *dflt) {
    if (given)
        return strcmp(given, "none") == 0 ? NULL : given;
    return split_rows(s, fs, dataset, dflt) > 0 ? dflt : NULL;
}

/* Is a better than b for the metric? NaN is worst; ties: lower log loss. */
static int better(const bn_trainjob_candidate *a, const bn_trainjob_candidate *b, int higher) {
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

/* The labels of f as indices of the training classes into a new *y. */
static int encode(bn_trainjob *j, const bn_features *f, int **y, const char *name, bn_error *err) {
    if (!(*y = malloc((size_t)(f->n ? f->n : 1) * sizeof **y)))
        return bn_fail(err, BN_ENOMEM, "out of memory for the labels of %s", name);
    return bn_featureset_encode(f, j->classes, j->k, *y, name, err);
}

/* The vectors of split `name` into *f and their labels into *y (validation,
 * test); what was allocated is freed with the job. */
static int load_split(bn_trainjob *j, const char *name, bn_features *f, int **y, bn_error *err) {
    bn_rows rows = {.dataset = j->ds.id, .split = name};
    int rc = bn_featureset_load_rows(j->s, j->fs, &rows, f, err);
    return rc ? rc : encode(j, f, y, name, err);
}

/* The training rows of fold f (all of them when f < 0). */
static bn_data fold_data(const bn_trainjob *j, int f) {
    bn_data d = {.dim = j->dim, .k = j->k, .nblocks = 0};
    int a = f < 0 ? 0 : j->fold_start[f], b = f < 0 ? 0 : j->fold_start[f + 1];
    if (f < 0 || a > 0)
        d.block[d.nblocks++] = (bn_block){j->tr.x, j->ytr, f < 0 ? j->tr.n : a};
    if (f >= 0 && b < j->tr.n)
        d.block[d.nblocks++] = (bn_block){j->tr.x + (size_t)b * j->dim, j->ytr + b, j->tr.n - b};
    return d;
}

/* Shuffle a[0..m) in place (Fisher-Yates on the splitmix64 stream of train.h). */
static void shuffle_rows(int *a, int m, uint64_t *state) {
    for (int i = m - 1; i > 0; i--) {
        int r = (int)bn_train_rng_below(state, (uint32_t)i + 1);
        int t = a[i];
        a[i] = a[r];
        a[r] = t;
    }
}

/* How the folds came to be, for a message: the user's --folds, or the
 * default a dataset without split folders gets (then the message says what
 * to pass instead: the user never typed 5). */
static const char *folds_said(const bn_trainjob *j, char *buf, size_t n) {
    if (j->folds_default)
        snprintf(buf, n, "%d-fold cross-validation (the default without split folders)", j->folds);
    else
        snprintf(buf, n, "--folds %d", j->folds);
    return buf;
}

static const char *folds_hint(const bn_trainjob *j) {
    return j->folds_default ? "; choose fewer folds with --folds K, or --holdout F" : "";
}

/* Stratified folds: each class's rows shuffled (seeded) and dealt round
 * robin; then the rows are permuted so fold f is [fold_start[f], fold_start[f+1]). */
static int make_folds(bn_trainjob *j, bn_error *err) {
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
            char what[96];
            return bn_fail(err, BN_EINVAL,
                           "%s: class '%s' has only %d training rows; each fold needs one of "
                           "every class%s",
                           folds_said(j, what, sizeof what), j->tr.labels[c], m,
                           m >= 2 ? folds_hint(j) : "");
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
    int rc = bn_featureset_permute(&j->tr, perm, err);
    free(fold), free(perm), free(rows);
    return rc;
}

/* --holdout F: hold out round(F * m) of each class's m training rows
 * (shuffled with the seed, at least one row kept on each side) into j->va,
 * as scikit-learn's train_test_split(stratify=y). */
static int make_holdout(bn_trainjob *j, bn_error *err) {
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
    int rc = bn_featureset_permute(&j->tr, perm, err);
    if (rc == BN_OK)
        rc = bn_featureset_split_tail(&j->tr, n - nheld, &j->va, err);
    free(perm), free(rows), free(held);
    return rc;
}

/* The feature set, the dataset and which splits play which part; every
 * combination that cannot work is refused here, before any row is read. */
static int resolve(bn_trainjob *j, bn_error *err) {
    const bn_trainjob_opts *o = j->o;
    int rc = bn_store_featureset_pick(j->s, o->features, &j->fs, &j->dim, j->fsname,
                                      sizeof j->fsname, err);
    if (rc == BN_OK)
        rc = o->dataset ? bn_datasets_find(j->s, o->dataset, &j->ds, err)
                        : bn_datasets_pick(j->s, j->fs, &j->ds, err);
    if (rc)
        return rc;
    /* A dataset without split folders (cat/, dog/ only): every row is a
     * training row, scored by cross-validation unless a holdout says. */
    j->train = o->train ? o->train : "train";
    j->all_rows = !o->train && split_rows(j->s, j->fs, j->ds.id, "train") == 0;
    if (j->all_rows && (o->valid || o->test))
        return bn_fail(err, BN_EINVAL,
                       "dataset '%s' has no split 'train' to go with --valid or --test: name the "
                       "training split with --train, or use --holdout F or --folds K",
                       j->ds.name);
    if (j->all_rows) {
        j->valid = j->test = NULL;
        if (!o->holdout)
            j->train = "all";
    } else {
        j->valid =
            o->holdout > 0 ? NULL : pick_split(j->s, j->fs, j->ds.id, o->valid, "validation");
        j->test = pick_split(j->s, j->fs, j->ds.id, o->test, "test");
    }
    if ((j->valid && strcmp(j->valid, j->train) == 0) ||
        (j->test && strcmp(j->test, j->train) == 0) ||
        (j->valid && j->test && strcmp(j->valid, j->test) == 0))
        return bn_fail(err, BN_EINVAL,
                       "--train, --valid and --test must name different splits ('%s', '%s', '%s')",
                       j->train, j->valid ? j->valid : "none", j->test ? j->test : "none");
    j->folds = o->folds;
    if (j->all_rows && !j->folds && !o->holdout)
        j->folds = 5, j->folds_default = 1; /* scikit-learn's cross_val_score default */
    if (j->ncand > 1 && !j->valid && !j->folds && !o->holdout)
        return bn_fail(err, BN_EINVAL,
                       "choosing among %d candidates needs a validation split (--valid SPLIT; "
                       "feature set '%s' has none named 'validation'), --holdout F or --folds K",
                       j->ncand, j->fsname);
    if (o->refit && !j->valid && !j->folds && !o->holdout)
        return bn_fail(err, BN_EINVAL,
                       "--refit trains on train + validation: it needs a validation split "
                       "(--valid) or --holdout F");
    return BN_OK;
}

/* The training rows (then the holdout or the folds cut from them), the
 * validation and test rows, and everyone's labels as class indices. */
static int load(bn_trainjob *j, bn_error *err) {
    const bn_trainjob_opts *o = j->o;
    bn_rows rows = {.dataset = j->ds.id, .split = j->all_rows ? NULL : j->train};
    int rc = bn_featureset_load_rows(j->s, j->fs, &rows, &j->tr, err);
    if (rc)
        return rc;
    for (int i = 0; i < j->tr.n; i++)
        if (j->tr.label[i] < 0)
            return bn_fail(err, BN_EINVAL,
                           "%s of dataset '%s' has no label (an image given to predict outside "
                           "class folders): a classifier trains on labelled images",
                           j->tr.path[i], j->ds.name);
    j->k = j->tr.nlabels;
    j->classes = j->tr.labels;
    if (j->k < 2)
        return bn_fail(err, BN_EINVAL,
                       "split '%s' of feature set '%s' has a single class ('%s'): a classifier "
                       "needs at least two",
                       j->train, j->fsname, j->classes[0]);
    if (o->holdout > 0) {
        if ((rc = make_holdout(j, err)))
            return rc;
        j->valid = "holdout";
        if ((rc = encode(j, &j->va, &j->yva, j->valid, err)))
            return rc;
        if (j->va.n == 0)
            return bn_fail(err, BN_EINVAL,
                           "--holdout %g: no row held out (each class needs two rows or more)",
                           o->holdout);
    }
    if (j->folds > j->tr.n) {
        char what[96];
        return bn_fail(err, BN_EINVAL, "%s: the training split has only %d rows%s",
                       folds_said(j, what, sizeof what), j->tr.n, folds_hint(j));
    }
    if (j->folds && (rc = make_folds(j, err)))
        return rc;
    if ((rc = encode(j, &j->tr, &j->ytr, j->train, err)))
        return rc;
    if (j->valid && !o->holdout && (rc = load_split(j, j->valid, &j->va, &j->yva, err)))
        return rc;
    if (j->test && (rc = load_split(j, j->test, &j->te, &j->yte, err)))
        return rc;
    return BN_OK;
}

/* Binary lbfgs candidates: those that share class weights and
 * standardisation, i.e. differ only in C, train together on each fold
 * (sweep.h): models[i * nf + f], infos likewise, nf = max(folds, 1). */
static int sweep_candidates(bn_trainjob *j, bn_model *models, bn_train_info *infos, bn_error *err) {
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
            double t0 = bn_progress_now();
            rc = bn_sweep_train(&d, &j->cand[idx[0]].opts, Cs, n, m, in, &st, err);
            if (rc == BN_OK)
                EVENT(j, swept, n, j->folds ? f : -1, &st, bn_progress_now() - t0);
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
static int fit_candidate(bn_trainjob *j, bn_trainjob_candidate *c, bn_model *warm,
                         const bn_model *trained, const bn_train_info *trained_info,
                         bn_error *err) {
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
static int cv_candidate(bn_trainjob *j, bn_trainjob_candidate *c, bn_model *warm,
                        const bn_model *trained, const bn_train_info *trained_info, bn_error *err) {
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
        for (int i = 0; i < BN_NMETRICS; i++)
            c->cv[i] += *bn_metrics_at(&m, i) / j->folds;
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

/* Candidate c's selection score, from cross-validation or the metrics of
 * the split it is chosen on. */
static void score(bn_trainjob *j, bn_trainjob_candidate *c) {
    if (j->folds) {
        for (int m = 0; m < BN_NMETRICS; m++)
            if (strcmp(bn_metrics_defs[m].name, j->o->select) == 0)
                c->score = c->cv[m];
        c->score_ll = c->cv[BN_METRIC_LOG_LOSS];
    } else {
        const bn_metrics *sm = j->valid ? &c->valid_m : &c->train_m;
        c->score = bn_metrics_get(sm, j->o->select);
        c->score_ll = sm->log_loss;
    }
}

/* Every candidate trained and scored; j->best chosen. warm (one model per
 * fold) carries the previous candidate's optimum to the next. */
static int candidates(bn_trainjob *j, bn_model *warm, bn_error *err) {
    int higher = bn_metrics_higher_is_better(j->o->select);
    int rc = BN_OK, nf = j->folds ? j->folds : 1;
    bn_data all = {.dim = j->dim, .k = j->k, .nblocks = 0};
    bn_model *swept = NULL;
    bn_train_info *swept_info = NULL;
    if (bn_sweep_supported(&all, &j->cand[0].opts)) {
        swept = calloc((size_t)j->ncand * nf, sizeof *swept);
        swept_info = calloc((size_t)j->ncand * nf, sizeof *swept_info);
        rc = swept && swept_info ? sweep_candidates(j, swept, swept_info, err)
                                 : bn_fail(err, BN_ENOMEM, "out of memory");
    }
    j->best = -1;
    for (int i = 0; i < j->ncand && rc == BN_OK; i++) {
        bn_trainjob_candidate *c = &j->cand[i];
        const bn_model *tm = swept ? &swept[(size_t)i * nf] : NULL;
        const bn_train_info *ti = swept ? &swept_info[(size_t)i * nf] : NULL;
        rc = j->folds ? cv_candidate(j, c, warm, tm, ti, err)
                      : fit_candidate(j, c, warm, tm, ti, err);
        if (rc)
            break;
        score(j, c);
        if (j->best < 0 || better(c, &j->cand[j->best], higher))
            j->best = i;
        EVENT(j, scored, i);
    }
    for (int i = 0; swept && i < j->ncand * nf; i++)
        bn_model_free(&swept[i]);
    free(swept), free(swept_info);
    return rc;
}

/* The chosen candidate trained again on the whole training split (after
 * cross-validation) or on train + validation (refit option); with early
 * stopping, for the epochs that were best. */
static int refit(bn_trainjob *j, bn_model *warm, bn_error *err) {
    bn_trainjob_candidate *r = &j->refit;
    const bn_trainjob_candidate *best = &j->cand[j->best];
    int minibatch = best->opts.solver == BN_SOLVER_SGD || best->opts.solver == BN_SOLVER_ADAM;
    r->opts = best->opts;
    if (minibatch && best->info.best_epoch > 0)
        r->opts.epochs = best->info.best_epoch;
    bn_data d = {.dim = j->dim, .k = j->k, .nblocks = 1};
    d.block[0] = (bn_block){j->tr.x, j->ytr, j->tr.n};
    if (j->o->refit && j->valid) {
        d.block[d.nblocks++] = (bn_block){j->va.x, j->yva, j->va.n};
        snprintf(j->refit_names, sizeof j->refit_names, "%s,%s", j->train, j->valid);
        j->refit_splits = j->refit_names;
    }
    bn_model m = {0};
    int swept = bn_sweep_supported(&d, &r->opts), rc;
    if (swept)
        rc = bn_sweep_train(&d, &r->opts, &r->opts.C, 1, &m, &r->info, NULL, err);
    else
        rc = bn_train(&d, NULL, &r->opts, j->folds ? &m : &warm[0], &r->info, err);
    if (rc == BN_OK)
        rc = bn_head_from_model(j->folds || swept ? &m : &warm[0], &r->head, err);
    bn_model_free(&m);
    if (rc == BN_OK) {
        r->has_head = 1;
        rc = predict_metrics(&r->head, j->tr.x, j->ytr, j->tr.n, &r->train_m, err);
    }
    if (rc == BN_OK && j->valid) {
        rc = predict_metrics(&r->head, j->va.x, j->yva, j->va.n, &r->valid_m, err);
        r->has_valid = rc == BN_OK;
    }
    if (rc == BN_OK)
        EVENT(j, refitted);
    return rc;
}

/* Candidate (or refit) i as stored: the run, its head and its metrics. */
static int store_run(bn_trainjob *j, int i, bn_error *err) {
    int is_refit = i == j->ncand;
    bn_trainjob_candidate *c = is_refit ? &j->refit : &j->cand[i];
    bn_run r;
    memset(&r, 0, sizeof r);
    r.sweep = j->sweep;
    r.featureset = j->fs;
    r.dataset = j->ds.id;
    r.role = is_refit ? "refit" : "candidate";
    r.train_splits = (char *)(is_refit ? j->refit_splits : j->train);
    r.folds = is_refit ? 0 : j->folds;
    r.opts = c->opts;
    r.k = j->k;
    r.classes = j->classes;
    r.n_train = j->tr.n + (is_refit && j->o->refit && j->valid ? j->va.n : 0);
    r.dim = j->dim;
    r.info = c->info;
    r.chosen = i == j->best;
    r.note = (char *)j->o->note;
    int rc = bn_runs_put(j->s, &r, &c->run, err);
    if (rc == BN_OK && c->has_head)
        rc = bn_runs_put_head(j->s, c->run, &c->head, err);
    if (rc == BN_OK && c->has_head)
        rc = bn_runs_put_metrics(j->s, c->run, j->train, &c->train_m, j->classes, err);
    if (rc == BN_OK && c->has_valid)
        rc = bn_runs_put_metrics(j->s, c->run, j->valid, &c->valid_m, j->classes, err);
    if (rc == BN_OK && !is_refit && j->folds) {
        for (int m = 0; m < BN_NMETRICS && rc == BN_OK; m++)
            rc = bn_runs_put_metric(j->s, c->run, "cv", bn_metrics_defs[m].name, c->cv[m], err);
        if (rc == BN_OK)
            rc = bn_runs_put_metric(j->s, c->run, "cv", "n", c->cv_n, err);
    }
    if (rc == BN_OK && c == j->final && j->test)
        rc = bn_runs_put_metrics(j->s, c->run, j->test, &j->test_m, j->classes, err);
    return rc;
}

/* The sweep, its holdout, every run: one transaction. */
static int store(bn_trainjob *j, bn_error *err) {
    const bn_trainjob_opts *o = j->o;
    int rc = bn_store_begin(j->s, err);
    if (rc)
        return rc;
    rc = bn_runs_sweep_create(j->s, j->fs, j->ds.id, o->select, j->select_on, j->folds, o->holdout,
                              j->ncand, &j->sweep, err);
    if (rc == BN_OK && o->holdout > 0)
        rc = bn_runs_put_holdout(j->s, j->sweep, j->va.image, j->va.n, err);
    for (int i = 0; i < j->ncand + j->do_refit && rc == BN_OK; i++)
        rc = store_run(j, i, err);
    if (rc == BN_OK)
        rc = bn_runs_sweep_finish(j->s, j->sweep, j->cand[j->best].run, j->final->run, j->seconds,
                                  err);
    if (rc == BN_OK)
        rc = bn_store_commit(j->s, err);
    else
        bn_store_rollback(j->s);
    return rc;
}

int bn_trainjob_run(bn_store *s, const bn_trainjob_opts *o, bn_trainjob *j, bn_error *err) {
    double t0 = bn_progress_now();
    memset(j, 0, sizeof *j);
    j->o = o;
    j->s = s;
    if (o->ngrid < 1 || !o->grid)
        return bn_fail(err, BN_EINVAL, "train: no candidate to train");
    if (!(j->cand = calloc((size_t)o->ngrid, sizeof *j->cand)))
        return bn_fail(err, BN_ENOMEM, "out of memory for %d candidates", o->ngrid);
    j->ncand = o->ngrid;
    for (int i = 0; i < j->ncand; i++)
        j->cand[i].opts = o->grid[i];
    int rc = resolve(j, err);
    if (rc == BN_OK)
        rc = load(j, err);
    if (rc)
        return rc;
    EVENT(j, loaded, bn_progress_now() - t0);
    j->select_on = j->folds ? "cv" : j->valid ? j->valid : j->train;
    int nf = j->folds ? j->folds : 1;
    bn_model *warm = calloc((size_t)nf, sizeof *warm);
    if (!warm)
        return bn_fail(err, BN_ENOMEM, "out of memory");
    rc = candidates(j, warm, err);
    j->do_refit = j->folds || o->refit;
    j->refit_splits = j->train;
    if (rc == BN_OK && j->do_refit)
        rc = refit(j, warm, err);
    for (int f = 0; f < nf; f++)
        bn_model_free(&warm[f]);
    free(warm);
    if (rc)
        return rc;
    j->final = j->do_refit ? &j->refit : &j->cand[j->best];
    if (j->test &&
        (rc = predict_metrics(&j->final->head, j->te.x, j->yte, j->te.n, &j->test_m, err)))
        return rc;
    j->seconds = bn_progress_now() - t0;
    return store(j, err);
}

static void candidate_free(bn_trainjob_candidate *c) {
    bn_head_free(&c->head);
    bn_metrics_free(&c->train_m);
    bn_metrics_free(&c->valid_m);
}

void bn_trainjob_free(bn_trainjob *j) {
    for (int i = 0; i < j->ncand; i++)
        candidate_free(&j->cand[i]);
    free(j->cand);
    candidate_free(&j->refit);
    bn_metrics_free(&j->test_m);
    bn_featureset_free(&j->tr);
    bn_featureset_free(&j->va);
    bn_featureset_free(&j->te);
    free(j->ytr), free(j->yva), free(j->yte);
    free(j->fold_start);
    memset(j, 0, sizeof *j);
}
