/*
 * runs.c: classify's tables (see runs.h and schema/002_classify.sql).
 *
 * Every statement binds its values; the listing builds its WHERE and ORDER BY
 * clauses from a fixed table of keys (never from user text), with the user's
 * values bound. Text is built with SQLite's string builder (sqlite3_str); the
 * classes' JSON is written by SQLite's json_insert and read back by its
 * json_each, so one JSON implementation handles both directions.
 */
#include "runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------------ */

/* classes as a JSON array of strings, made by SQLite's json_insert (the
 * same JSON code that json_each reads it back with), into *out (malloc'ed). */
static int runs_classes_json(bn_store *s, char *const *classes, int k, char **out, bn_error *err) {
    sqlite3_stmt *q;
    *out = strdup("[]");
    if (!*out)
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    if (sqlite3_prepare_v2(bn_store_db(s), "SELECT json_insert(?1, '$[#]', ?2)", -1, &q, NULL) !=
        SQLITE_OK)
        return bn_store_fail(s, err, "writing the classes");
    int rc = BN_OK;
    for (int c = 0; c < k && rc == BN_OK; c++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, *out, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(q, 2, classes[c], -1, SQLITE_STATIC);
        const unsigned char *json =
            sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_text(q, 0) : NULL;
        char *next = json ? strdup((const char *)json) : NULL;
        if (!next) {
            rc = json ? bn_fail(err, BN_ENOMEM, "runs: out of memory")
                      : bn_store_fail(s, err, "writing the classes");
            break;
        }
        free(*out);
        *out = next;
    }
    sqlite3_finalize(q);
    return rc;
}

/* ,"key":value with the 17 significant digits that give the double back. */
static void runs_json_double(sqlite3_str *b, const char *key, double v) {
    char num[40];
    snprintf(num, sizeof num, "%.17g", v);
    sqlite3_str_appendf(b, ",\"%s\":%s", key, num);
}

static char *runs_strdup(const unsigned char *s) {
    return s ? strdup((const char *)s) : NULL;
}

void bn_run_free(bn_run *r) {
    free(r->featureset_name);
    free(r->dataset_name);
    free(r->role);
    free(r->train_splits);
    if (r->classes)
        for (int i = 0; i < r->k; i++)
            free(r->classes[i]);
    free(r->classes);
    free(r->note);
    free(r->created_at);
    memset(r, 0, sizeof *r);
}

static int runs_is_minibatch(bn_solver s) {
    return s == BN_SOLVER_SGD || s == BN_SOLVER_ADAM;
}

/* ---- writing -------------------------------------------------------------------- */

int bn_runs_sweep_create(bn_store *s, int64_t featureset, int64_t dataset, const char *select_by,
                         const char *select_on, int folds, double holdout, int candidates,
                         int64_t *sweep, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            bn_store_db(s),
            "INSERT INTO sweeps (featureset, select_by, select_on, folds, candidates, dataset,"
            " holdout) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "recording the sweep");
    if (dataset)
        sqlite3_bind_int64(q, 6, dataset);
    if (holdout > 0)
        sqlite3_bind_double(q, 7, holdout);
    sqlite3_bind_int64(q, 1, featureset);
    sqlite3_bind_text(q, 2, select_by, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, select_on, -1, SQLITE_TRANSIENT);
    if (folds > 0)
        sqlite3_bind_int(q, 4, folds);
    sqlite3_bind_int(q, 5, candidates);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(s, err, "recording the sweep");
    *sweep = sqlite3_last_insert_rowid(bn_store_db(s));
    return BN_OK;
}

int bn_runs_put_holdout(bn_store *s, int64_t sweep, const int64_t *images, int n, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "INSERT OR IGNORE INTO holdouts (sweep, image) VALUES (?1, ?2)", -1, &q,
                           NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "recording the held-out images");
    int rc = BN_OK;
    for (int i = 0; i < n && rc == BN_OK; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, sweep);
        sqlite3_bind_int64(q, 2, images[i]);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = bn_store_fail(s, err, "recording the held-out images");
    }
    sqlite3_finalize(q);
    return rc;
}

int bn_runs_sweep_finish(bn_store *s, int64_t sweep, int64_t chosen, int64_t final, double seconds,
                         bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "UPDATE sweeps SET chosen = ?2, final = ?3, seconds = ?4 WHERE id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "finishing the sweep");
    sqlite3_bind_int64(q, 1, sweep);
    if (chosen)
        sqlite3_bind_int64(q, 2, chosen);
    if (final)
        sqlite3_bind_int64(q, 3, final);
    sqlite3_bind_double(q, 4, seconds);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, "finishing the sweep");
}

int bn_runs_put(bn_store *s, const bn_run *r, int64_t *id, bn_error *err) {
    const bn_train_opts *o = &r->opts;
    int mb = runs_is_minibatch(o->solver);
    char *classes = NULL;
    int rc = runs_classes_json(s, r->classes, r->k, &classes, err);
    if (rc) {
        free(classes);
        return rc;
    }
    /* The hyperparameters as one JSON object (SQLite's string builder). */
    sqlite3_str *pb = sqlite3_str_new(bn_store_db(s));
    sqlite3_str_appendf(pb, "{\"solver\":\"%s\"", bn_solver_name(o->solver));
    runs_json_double(pb, "C", o->C);
    sqlite3_str_appendf(pb, ",\"class_weight\":\"%s\",\"standardize\":%s",
                        o->balanced ? "balanced" : "none", o->standardize ? "true" : "false");
    if (mb) {
        sqlite3_str_appendf(pb, ",\"epochs\":%d", o->epochs);
        runs_json_double(pb, "lr", o->lr);
        sqlite3_str_appendf(pb, ",\"batch_size\":%d,\"patience\":%d", o->batch_size, o->patience);
    } else {
        sqlite3_str_appendf(pb, ",\"max_iter\":%d", o->max_iter);
        runs_json_double(pb, "tol", o->tol);
    }
    sqlite3_str_appendf(pb, ",\"seed\":%llu", (unsigned long long)o->seed);
    if (r->folds > 0)
        sqlite3_str_appendf(pb, ",\"folds\":%d", r->folds);
    sqlite3_str_appendall(pb, "}");
    int pb_err = sqlite3_str_errcode(pb);
    char *params = sqlite3_str_finish(pb);
    if (pb_err || !params) {
        free(classes), sqlite3_free(params);
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    }
    sqlite3_stmt *q;
    const char *sql =
        "INSERT INTO runs (sweep, role, featureset, train_splits, folds, solver, C, class_weight,"
        " standardize, max_iter, tol, epochs, lr, batch_size, patience, seed, params, classes,"
        " n_train, dim, iterations, converged, objective, seconds, chosen, note, dataset)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK) {
        free(classes), sqlite3_free(params);
        return bn_store_fail(s, err, "recording the run");
    }
    if (r->sweep)
        sqlite3_bind_int64(q, 1, r->sweep);
    sqlite3_bind_text(q, 2, r->role, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, r->featureset);
    sqlite3_bind_text(q, 4, r->train_splits, -1, SQLITE_TRANSIENT);
    if (r->folds > 0)
        sqlite3_bind_int(q, 5, r->folds);
    sqlite3_bind_text(q, 6, bn_solver_name(o->solver), -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 7, o->C);
    sqlite3_bind_text(q, 8, o->balanced ? "balanced" : "none", -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 9, o->standardize ? 1 : 0);
    if (!mb) {
        sqlite3_bind_int(q, 10, o->max_iter);
        sqlite3_bind_double(q, 11, o->tol);
    } else {
        sqlite3_bind_int(q, 12, o->epochs);
        sqlite3_bind_double(q, 13, o->lr);
        sqlite3_bind_int(q, 14, o->batch_size);
        sqlite3_bind_int(q, 15, o->patience);
    }
    sqlite3_bind_int64(q, 16, (sqlite3_int64)o->seed);
    sqlite3_bind_text(q, 17, params, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 18, classes, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(q, 19, r->n_train);
    sqlite3_bind_int(q, 20, r->dim);
    sqlite3_bind_int(q, 21, r->info.iterations);
    sqlite3_bind_int(q, 22, r->info.converged);
    if (isfinite(r->info.objective))
        sqlite3_bind_double(q, 23, r->info.objective);
    sqlite3_bind_double(q, 24, r->info.seconds);
    sqlite3_bind_int(q, 25, r->chosen);
    if (r->note)
        sqlite3_bind_text(q, 26, r->note, -1, SQLITE_TRANSIENT);
    if (r->dataset)
        sqlite3_bind_int64(q, 27, r->dataset);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    free(classes), sqlite3_free(params);
    if (rc != SQLITE_DONE)
        return bn_store_fail(s, err, "recording the run");
    *id = sqlite3_last_insert_rowid(bn_store_db(s));
    return BN_OK;
}

int bn_runs_set_chosen(bn_store *s, int64_t run, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), "UPDATE runs SET chosen = 1 WHERE id = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "marking the chosen run");
    sqlite3_bind_int64(q, 1, run);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, "marking the chosen run");
}

static int runs_metric_row(bn_store *s, sqlite3_stmt *q, int64_t run, const char *split,
                           const char *metric, const char *cls, double value, bn_error *err) {
    if (isnan(value))
        return BN_OK; /* undefined metrics are absent */
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_text(q, 2, split, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, metric, -1, SQLITE_STATIC);
    if (cls)
        sqlite3_bind_text(q, 4, cls, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, 4);
    sqlite3_bind_double(q, 5, value);
    if (sqlite3_step(q) != SQLITE_DONE)
        return bn_store_fail(s, err, "recording metrics");
    return BN_OK;
}

static const char runs_metric_sql[] =
    "INSERT OR REPLACE INTO run_metrics (run, split, metric, class, value)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";

int bn_runs_put_metric(bn_store *s, int64_t run, const char *split, const char *metric,
                       double value, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), runs_metric_sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "recording metrics");
    int rc = runs_metric_row(s, q, run, split, metric, NULL, value, err);
    sqlite3_finalize(q);
    return rc;
}

int bn_runs_put_metrics(bn_store *s, int64_t run, const char *split, const bn_metrics *m,
                        char *const *classes, bn_error *err) {
    sqlite3_stmt *q, *c = NULL;
    if (sqlite3_prepare_v2(bn_store_db(s), runs_metric_sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "recording metrics");
    int rc = BN_OK;
    for (int i = 0; i < BN_NMETRICS && !rc; i++)
        rc = runs_metric_row(s, q, run, split, bn_metrics_defs[i].name, NULL,
                             *bn_metrics_at((bn_metrics *)m, i), err);
    if (!rc)
        rc = runs_metric_row(s, q, run, split, "n", NULL, m->n, err);
    for (int k = 0; k < m->k && !rc; k++) {
        rc = runs_metric_row(s, q, run, split, "precision", classes[k], m->precision[k], err);
        if (!rc)
            rc = runs_metric_row(s, q, run, split, "recall", classes[k], m->recall[k], err);
        if (!rc)
            rc = runs_metric_row(s, q, run, split, "f1", classes[k], m->f1[k], err);
        if (!rc)
            rc = runs_metric_row(s, q, run, split, "support", classes[k], (double)m->support[k],
                                 err);
    }
    if (!rc && sqlite3_prepare_v2(bn_store_db(s),
                                  "INSERT OR REPLACE INTO run_confusion (run, split, actual,"
                                  " predicted, count) VALUES (?1, ?2, ?3, ?4, ?5)",
                                  -1, &c, NULL) != SQLITE_OK)
        rc = bn_store_fail(s, err, "recording the confusion matrix");
    for (int a = 0; a < m->k && !rc; a++)
        for (int p = 0; p < m->k && !rc; p++) {
            sqlite3_reset(c);
            sqlite3_bind_int64(c, 1, run);
            sqlite3_bind_text(c, 2, split, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(c, 3, classes[a], -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(c, 4, classes[p], -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(c, 5, m->confusion[(size_t)a * m->k + p]);
            if (sqlite3_step(c) != SQLITE_DONE)
                rc = bn_store_fail(s, err, "recording the confusion matrix");
        }
    sqlite3_finalize(q);
    sqlite3_finalize(c);
    return rc;
}

int bn_runs_put_head(bn_store *s, int64_t run, const bn_head *h, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "INSERT OR REPLACE INTO heads (run, dim, outputs, weights, bias, mean,"
                           " scale) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "storing the head");
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_int(q, 2, h->dim);
    sqlite3_bind_int(q, 3, h->nout);
    sqlite3_bind_blob64(q, 4, h->w, (sqlite3_uint64)h->nout * h->dim * sizeof(float),
                        SQLITE_STATIC);
    sqlite3_bind_blob64(q, 5, h->b, (sqlite3_uint64)h->nout * sizeof(float), SQLITE_STATIC);
    if (h->mean) {
        sqlite3_bind_blob64(q, 6, h->mean, (sqlite3_uint64)h->dim * sizeof(float), SQLITE_STATIC);
        sqlite3_bind_blob64(q, 7, h->scale, (sqlite3_uint64)h->dim * sizeof(float), SQLITE_STATIC);
    }
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, "storing the head");
}

int bn_runs_put_predictions(bn_store *s, int64_t run, const int64_t *image, const double *proba,
                            int n, int k, char *const *classes, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "INSERT OR REPLACE INTO predictions (run, image, predicted, probability,"
                           " probabilities) VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "storing predictions");
    float *pf = malloc((size_t)k * sizeof *pf);
    if (!pf) {
        sqlite3_finalize(q);
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    }
    int rc = BN_OK;
    for (int i = 0; i < n && !rc; i++) {
        const double *p = proba + (size_t)i * k;
        int best = bn_metrics_argmax(p, k);
        for (int c = 0; c < k; c++)
            pf[c] = (float)p[c];
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, run);
        sqlite3_bind_int64(q, 2, image[i]);
        sqlite3_bind_text(q, 3, classes[best], -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(q, 4, p[best]);
        sqlite3_bind_blob(q, 5, pf, (int)(k * sizeof *pf), SQLITE_TRANSIENT);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = bn_store_fail(s, err, "storing predictions");
    }
    free(pf);
    sqlite3_finalize(q);
    return rc;
}

/* ---- reading -------------------------------------------------------------------- */

#define RUNS_COLUMNS                                                                               \
    "r.id, r.sweep, r.featureset, f.name, r.role, r.train_splits, r.folds, r.solver, r.C,"         \
    " r.class_weight, r.standardize, r.max_iter, r.tol, r.epochs, r.lr, r.batch_size,"             \
    " r.patience, r.seed, r.classes, r.n_train, r.dim, r.iterations, r.converged, r.objective,"    \
    " r.seconds, r.chosen, r.note, r.created_at, r.dataset,"                                       \
    " (SELECT name FROM datasets d WHERE d.id = r.dataset) AS dataset_name"
#define RUNS_NCOLUMNS 30

/* Classes from the JSON array in column text, parsed by SQLite. */
static int runs_classes(bn_store *s, const char *json, bn_run *r, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT value FROM json_each(?1) WHERE type = 'text' ORDER BY key", -1,
                           &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading a run's classes");
    sqlite3_bind_text(q, 1, json, -1, SQLITE_TRANSIENT);
    int cap = 8, rc = BN_OK;
    r->classes = malloc((size_t)cap * sizeof *r->classes);
    r->k = 0;
    int step;
    while (r->classes && (step = sqlite3_step(q)) == SQLITE_ROW) {
        if (r->k == cap) {
            char **p = realloc(r->classes, (size_t)cap * 2 * sizeof *p);
            if (!p)
                break;
            r->classes = p;
            cap *= 2;
        }
        r->classes[r->k] = runs_strdup(sqlite3_column_text(q, 0));
        if (!r->classes[r->k])
            break;
        r->k++;
    }
    if (!r->classes || step == SQLITE_ROW)
        rc = bn_fail(err, BN_ENOMEM, "runs: out of memory");
    else if (step != SQLITE_DONE)
        rc = bn_store_fail(s, err, "reading a run's classes");
    sqlite3_finalize(q);
    return rc;
}

static int runs_row(bn_store *s, sqlite3_stmt *q, bn_run *r, bn_error *err) {
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(q, 0);
    r->sweep = sqlite3_column_int64(q, 1);
    r->featureset = sqlite3_column_int64(q, 2);
    r->featureset_name = runs_strdup(sqlite3_column_text(q, 3));
    r->role = runs_strdup(sqlite3_column_text(q, 4));
    r->train_splits = runs_strdup(sqlite3_column_text(q, 5));
    r->folds = sqlite3_column_int(q, 6);
    bn_train_opts_default(&r->opts);
    bn_solver_parse((const char *)sqlite3_column_text(q, 7), &r->opts.solver);
    r->opts.C = sqlite3_column_double(q, 8);
    r->opts.balanced = strcmp((const char *)sqlite3_column_text(q, 9), "balanced") == 0;
    r->opts.standardize = sqlite3_column_int(q, 10);
    if (sqlite3_column_type(q, 11) != SQLITE_NULL)
        r->opts.max_iter = sqlite3_column_int(q, 11);
    if (sqlite3_column_type(q, 12) != SQLITE_NULL)
        r->opts.tol = sqlite3_column_double(q, 12);
    if (sqlite3_column_type(q, 13) != SQLITE_NULL)
        r->opts.epochs = sqlite3_column_int(q, 13);
    if (sqlite3_column_type(q, 14) != SQLITE_NULL)
        r->opts.lr = sqlite3_column_double(q, 14);
    if (sqlite3_column_type(q, 15) != SQLITE_NULL)
        r->opts.batch_size = sqlite3_column_int(q, 15);
    if (sqlite3_column_type(q, 16) != SQLITE_NULL)
        r->opts.patience = sqlite3_column_int(q, 16);
    r->opts.seed = (uint64_t)sqlite3_column_int64(q, 17);
    r->n_train = sqlite3_column_int(q, 19);
    r->dim = sqlite3_column_int(q, 20);
    r->info.iterations = sqlite3_column_int(q, 21);
    r->info.converged = sqlite3_column_int(q, 22);
    r->info.objective =
        sqlite3_column_type(q, 23) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 23);
    r->info.seconds = sqlite3_column_double(q, 24);
    r->chosen = sqlite3_column_int(q, 25);
    r->note = runs_strdup(sqlite3_column_text(q, 26));
    r->created_at = runs_strdup(sqlite3_column_text(q, 27));
    r->dataset = sqlite3_column_int64(q, 28);
    r->dataset_name = runs_strdup(sqlite3_column_text(q, 29)); /* NULL: older runs */
    if (!r->featureset_name || !r->role || !r->train_splits || !r->created_at) {
        bn_run_free(r);
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    }
    int rc = runs_classes(s, (const char *)sqlite3_column_text(q, 18), r, err);
    if (rc)
        bn_run_free(r);
    return rc;
}

int bn_runs_get(bn_store *s, int64_t id, bn_run *r, bn_error *err) {
    memset(r, 0, sizeof *r);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT " RUNS_COLUMNS " FROM runs r JOIN featuresets f"
                           " ON f.id = r.featureset WHERE r.id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the run");
    sqlite3_bind_int64(q, 1, id);
    int step = sqlite3_step(q), rc;
    if (step == SQLITE_ROW)
        rc = runs_row(s, q, r, err);
    else if (step == SQLITE_DONE)
        rc = bn_fail(err, BN_EINVAL, "%s: no run %lld (list them with: bottleneck-classify runs)",
                     bn_store_path(s), (long long)id);
    else
        rc = bn_store_fail(s, err, "reading the run");
    sqlite3_finalize(q);
    return rc;
}

int bn_runs_rows(bn_store *s, const bn_run *r, const char *split, bn_rows *rows, bn_error *err) {
    memset(rows, 0, sizeof *rows);
    rows->dataset = r->dataset;
    rows->split = split;
    if (split && strcmp(split, "all") == 0) {
        rows->split = NULL;
        return BN_OK;
    }
    if (!split || !r->sweep)
        return BN_OK;
    /* A --holdout sweep: 'holdout' is the rows it held out, 'train' the rows
     * it kept (of the train split, or of every row without split folders). */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT holdout, (SELECT count(*) FROM images WHERE split = 'train'"
                           " AND (?2 = 0 OR dataset = ?2)) FROM sweeps WHERE id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the run's sweep");
    sqlite3_bind_int64(q, 1, r->sweep);
    sqlite3_bind_int64(q, 2, r->dataset);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        if (strcmp(split, "holdout") == 0) {
            rows->split = NULL;
            rows->held_out = r->sweep;
        } else if (strcmp(split, "train") == 0) {
            if (sqlite3_column_int64(q, 1) == 0)
                rows->split = NULL;
            rows->kept_by = r->sweep;
        }
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? BN_OK
                                                 : bn_store_fail(s, err, "reading the run's sweep");
}

int bn_runs_get_head(bn_store *s, int64_t id, bn_head *h, bn_error *err) {
    memset(h, 0, sizeof *h);
    bn_run r;
    int rc = bn_runs_get(s, id, &r, err);
    if (rc)
        return rc;
    int k = r.k;
    int64_t sweep = r.sweep;
    bn_run_free(&r);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            bn_store_db(s),
            "SELECT dim, outputs, weights, bias, mean, scale FROM heads WHERE run = ?1", -1, &q,
            NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the head");
    sqlite3_bind_int64(q, 1, id);
    int step = sqlite3_step(q);
    if (step != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (step != SQLITE_DONE)
            return bn_store_fail(s, err, "reading the head");
        sqlite3_stmt *f;
        int64_t final = 0;
        if (sqlite3_prepare_v2(bn_store_db(s), "SELECT final FROM sweeps WHERE id = ?1", -1, &f,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_int64(f, 1, sweep);
            if (sqlite3_step(f) == SQLITE_ROW)
                final = sqlite3_column_int64(f, 0);
            sqlite3_finalize(f);
        }
        if (final && final != id)
            return bn_fail(err, BN_EINVAL,
                           "run %lld has no trained head (a cross-validation candidate): its "
                           "sweep's final model is run %lld",
                           (long long)id, (long long) final);
        return bn_fail(err, BN_EINVAL, "run %lld has no trained head", (long long)id);
    }
    int dim = sqlite3_column_int(q, 0), nout = sqlite3_column_int(q, 1);
    int has_std = sqlite3_column_type(q, 4) != SQLITE_NULL;
    rc = bn_head_alloc(h, dim, k, has_std, err);
    if (rc == BN_OK && nout != h->nout)
        rc = bn_fail(err, BN_EFORMAT, "%s: run %lld: head has %d outputs for %d classes",
                     bn_store_path(s), (long long)id, nout, k);
    struct {
        int col;
        float *dst;
        int count;
    } blobs[4] = {{2, h->w, nout * dim}, {3, h->b, nout}, {4, h->mean, dim}, {5, h->scale, dim}};
    for (int b = 0; b < 4 && rc == BN_OK; b++) {
        if (!blobs[b].dst)
            continue;
        if (sqlite3_column_bytes(q, blobs[b].col) != blobs[b].count * (int)sizeof(float))
            rc = bn_fail(err, BN_EFORMAT, "%s: run %lld: head BLOB %d has %d bytes, expected %d",
                         bn_store_path(s), (long long)id, b, sqlite3_column_bytes(q, blobs[b].col),
                         blobs[b].count * (int)sizeof(float));
        else
            memcpy(blobs[b].dst, sqlite3_column_blob(q, blobs[b].col),
                   (size_t)blobs[b].count * sizeof(float));
    }
    sqlite3_finalize(q);
    if (rc)
        bn_head_free(h);
    return rc;
}

int bn_runs_get_metric(bn_store *s, int64_t run, const char *split, const char *metric,
                       double *value, int *found, bn_error *err) {
    sqlite3_stmt *q;
    *found = 0;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT value FROM run_metrics WHERE run = ?1 AND split = ?2"
                           " AND metric = ?3 AND class IS NULL",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading metrics");
    sqlite3_bind_int64(q, 1, run);
    sqlite3_bind_text(q, 2, split, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 3, metric, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        *value = sqlite3_column_double(q, 0);
        *found = 1;
    }
    sqlite3_finalize(q);
    return step == SQLITE_ROW || step == SQLITE_DONE ? BN_OK
                                                     : bn_store_fail(s, err, "reading metrics");
}

int bn_runs_get_splits(bn_store *s, int64_t run, char ***splits, int *n, bn_error *err) {
    *splits = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT split FROM run_metrics WHERE run = ?1 GROUP BY split"
                           " ORDER BY min(rowid)",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading metrics");
    sqlite3_bind_int64(q, 1, run);
    int rc = BN_OK, step;
    while (rc == BN_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        char **p = realloc(*splits, (size_t)(*n + 1) * sizeof *p);
        char *v = runs_strdup(sqlite3_column_text(q, 0));
        if (!p || !v) {
            free(v);
            if (p)
                *splits = p;
            rc = bn_fail(err, BN_ENOMEM, "runs: out of memory");
            break;
        }
        *splits = p;
        (*splits)[(*n)++] = v;
    }
    if (rc == BN_OK && step != SQLITE_DONE)
        rc = bn_store_fail(s, err, "reading metrics");
    sqlite3_finalize(q);
    if (rc) {
        for (int i = 0; i < *n; i++)
            free((*splits)[i]);
        free(*splits);
        *splits = NULL;
        *n = 0;
    }
    return rc;
}

static int runs_class_index(const bn_run *r, const char *name) {
    for (int c = 0; c < r->k; c++)
        if (strcmp(r->classes[c], name) == 0)
            return c;
    return -1;
}

int bn_runs_get_metrics(bn_store *s, const bn_run *r, const char *split, bn_metrics *m, int *detail,
                        bn_error *err) {
    memset(m, 0, sizeof *m);
    *detail = 0;
    int k = r->k;
    m->k = k;
    m->precision = malloc((size_t)k * sizeof *m->precision);
    m->recall = malloc((size_t)k * sizeof *m->recall);
    m->f1 = malloc((size_t)k * sizeof *m->f1);
    m->support = calloc((size_t)k, sizeof *m->support);
    m->confusion = calloc((size_t)k * (size_t)k, sizeof *m->confusion);
    if (!m->precision || !m->recall || !m->f1 || !m->support || !m->confusion) {
        bn_metrics_free(m);
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    }
    for (int c = 0; c < k; c++)
        m->precision[c] = m->recall[c] = m->f1[c] = NAN;
    for (int i = 0; i < BN_NMETRICS; i++)
        *bn_metrics_at(m, i) = NAN;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT metric, class, value FROM run_metrics WHERE run = ?1"
                           " AND split = ?2",
                           -1, &q, NULL) != SQLITE_OK) {
        bn_metrics_free(m);
        return bn_store_fail(s, err, "reading metrics");
    }
    sqlite3_bind_int64(q, 1, r->id);
    sqlite3_bind_text(q, 2, split, -1, SQLITE_TRANSIENT);
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *metric = (const char *)sqlite3_column_text(q, 0);
        double v = sqlite3_column_double(q, 2);
        if (sqlite3_column_type(q, 1) == SQLITE_NULL) {
            double *dst = NULL;
            for (int i = 0; i < BN_NMETRICS && !dst; i++)
                if (strcmp(metric, bn_metrics_defs[i].name) == 0)
                    dst = bn_metrics_at(m, i);
            if (dst)
                *dst = v;
            else if (strcmp(metric, "n") == 0)
                m->n = (int)v;
            continue;
        }
        int c = runs_class_index(r, (const char *)sqlite3_column_text(q, 1));
        if (c < 0)
            continue;
        *detail = 1;
        if (strcmp(metric, "precision") == 0)
            m->precision[c] = v;
        else if (strcmp(metric, "recall") == 0)
            m->recall[c] = v;
        else if (strcmp(metric, "f1") == 0)
            m->f1[c] = v;
        else if (strcmp(metric, "support") == 0)
            m->support[c] = (int64_t)v;
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) {
        bn_metrics_free(m);
        return bn_store_fail(s, err, "reading metrics");
    }
    if (sqlite3_prepare_v2(bn_store_db(s),
                           "SELECT actual, predicted, count FROM run_confusion WHERE run = ?1"
                           " AND split = ?2",
                           -1, &q, NULL) != SQLITE_OK) {
        bn_metrics_free(m);
        return bn_store_fail(s, err, "reading the confusion matrix");
    }
    sqlite3_bind_int64(q, 1, r->id);
    sqlite3_bind_text(q, 2, split, -1, SQLITE_TRANSIENT);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int a = runs_class_index(r, (const char *)sqlite3_column_text(q, 0));
        int p = runs_class_index(r, (const char *)sqlite3_column_text(q, 1));
        if (a >= 0 && p >= 0)
            m->confusion[(size_t)a * k + p] = sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) {
        bn_metrics_free(m);
        return bn_store_fail(s, err, "reading the confusion matrix");
    }
    return BN_OK;
}

/* ---- listing ------------------------------------------------------------------ */

/* Keys of filters and sorting: the SQL they stand for (columns of the
 * listing's inner query), whether the value is text, and the direction that
 * puts the best (or newest) first. */
static const struct {
    const char *key, *sql;
    int text, desc;
} runs_keys[] = {
    {"id", "id", 0, 1},
    {"created", "id", 0, 1},
    {"sweep", "sweep", 0, 1},
    {"featureset", "name", 1, 0},
    {"dataset", "dataset_name", 1, 0},
    {"solver", "solver", 1, 0},
    {"role", "role", 1, 0},
    {"class_weight", "class_weight", 1, 0},
    {"standardize", "standardize", 0, 1},
    {"C", "C", 0, 0},
    {"seconds", "seconds", 0, 0},
    {"chosen", "chosen", 0, 1},
    {"accuracy", "m_accuracy", 0, 1},
    {"log_loss", "m_log_loss", 0, 0},
    {"roc_auc", "m_roc_auc", 0, 1},
    {"f1_macro", "m_f1_macro", 0, 1},
    {"precision_macro", "m_precision_macro", 0, 1},
    {"recall_macro", "m_recall_macro", 0, 1},
};
#define RUNS_NKEYS ((int)(sizeof runs_keys / sizeof runs_keys[0]))

static int runs_key(const char *k, size_t len) {
    for (int i = 0; i < RUNS_NKEYS; i++)
        if (strlen(runs_keys[i].key) == len && strncmp(runs_keys[i].key, k, len) == 0)
            return i;
    return -1;
}

static void runs_key_list(char *out, size_t n) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < RUNS_NKEYS && len < n; i++)
        if (strcmp(runs_keys[i].key, "created") != 0)
            len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", runs_keys[i].key);
}

#define RUNS_METRIC(name)                                                                          \
    "(SELECT value FROM run_metrics m WHERE m.run = r.id AND m.split = ?1 AND m.metric = '" name   \
    "' AND m.class IS NULL) AS m_" name

int bn_runs_list(bn_store *s, const bn_runs_query *query, bn_runs_row_fn fn, void *ctx,
                 bn_error *err) {
    const char *split = query->split ? query->split : "validation";
    sqlite3_str *sql = sqlite3_str_new(bn_store_db(s));
    sqlite3_str_appendall(sql,
                          "SELECT * FROM (SELECT " RUNS_COLUMNS ", " RUNS_METRIC("accuracy") ", ");
    sqlite3_str_appendall(sql, RUNS_METRIC("log_loss") ", " RUNS_METRIC("roc_auc") ", ");
    sqlite3_str_appendall(sql, RUNS_METRIC("f1_macro") ", " RUNS_METRIC("precision_macro") ", ");
    sqlite3_str_appendall(sql, RUNS_METRIC("recall_macro") " FROM runs r JOIN featuresets f"
                                                           " ON f.id = r.featureset) WHERE 1");
    /* Filters: key OP value, the value bound as parameter ?2, ?3, ... */
    static const char *const ops[] = {">=", "<=", "!=", "=", "<", ">"};
    int nparams = 1;
    int keyidx[64];
    const char *vals[64];
    if (query->nfilters > 64) {
        sqlite3_free(sqlite3_str_finish(sql));
        return bn_fail(err, BN_EINVAL, "runs: at most 64 filters");
    }
    for (int i = 0; i < query->nfilters; i++) {
        const char *f = query->filters[i];
        const char *op = NULL, *at = NULL;
        for (const char *p = f; *p && !op; p++)
            for (int o = 0; o < 6; o++)
                if (strncmp(p, ops[o], strlen(ops[o])) == 0) {
                    op = ops[o];
                    at = p;
                    break;
                }
        size_t klen = op ? (size_t)(at - f) : 0;
        while (klen > 0 && f[klen - 1] == ' ')
            klen--;
        int key = op ? runs_key(f, klen) : -1;
        if (key < 0) {
            char keys[512];
            runs_key_list(keys, sizeof keys);
            sqlite3_free(sqlite3_str_finish(sql));
            return bn_fail(err, BN_EINVAL,
                           "--filter '%s': expected KEY OP VALUE, OP one of = != < <= > >=, KEY "
                           "one of %s",
                           f, keys);
        }
        const char *val = at + strlen(op);
        while (*val == ' ')
            val++;
        if (!runs_keys[key].text) {
            char *end;
            /* Flags read as the options that set them: yes/no, true/false. */
            if (strcmp(runs_keys[key].key, "standardize") == 0 ||
                strcmp(runs_keys[key].key, "chosen") == 0) {
                if (strcmp(val, "yes") == 0 || strcmp(val, "true") == 0)
                    val = "1";
                else if (strcmp(val, "no") == 0 || strcmp(val, "false") == 0)
                    val = "0";
            }
            strtod(val, &end);
            if (!*val || *end) {
                sqlite3_free(sqlite3_str_finish(sql));
                return bn_fail(err, BN_EINVAL, "--filter '%s': '%s' is not a number%s", f, val,
                               strcmp(runs_keys[key].key, "standardize") == 0 ||
                                       strcmp(runs_keys[key].key, "chosen") == 0
                                   ? " (or yes, no)"
                                   : "");
            }
        }
        keyidx[i] = key;
        vals[i] = val;
        const char *sqlop = op;
        if (runs_keys[key].text && strcmp(runs_keys[key].key, "featureset") != 0 &&
            strcmp(runs_keys[key].key, "dataset") != 0 && op[0] != '=' && op[0] != '!') {
            sqlite3_free(sqlite3_str_finish(sql));
            return bn_fail(err, BN_EINVAL, "--filter '%s': %s takes = or !=", f,
                           runs_keys[key].key);
        }
        if ((strcmp(runs_keys[key].key, "featureset") == 0 ||
             strcmp(runs_keys[key].key, "dataset") == 0) &&
            (op[0] == '=' || op[0] == '!'))
            sqlop = op[0] == '=' ? " GLOB " : " NOT GLOB ";
        sqlite3_str_appendf(sql, " AND %s%s?%d", runs_keys[key].sql, sqlop, ++nparams);
    }
    /* Sort: best first (metrics), newest first (id); '-' reverses. */
    const char *sort = query->sort ? query->sort : "id";
    int reverse = sort[0] == '-';
    int sk = runs_key(sort + reverse, strlen(sort + reverse));
    if (sk < 0) {
        char keys[512];
        runs_key_list(keys, sizeof keys);
        sqlite3_free(sqlite3_str_finish(sql));
        return bn_fail(err, BN_EINVAL, "--sort '%s': expected one of %s", sort, keys);
    }
    int desc = runs_keys[sk].desc ^ reverse;
    sqlite3_str_appendf(sql, " ORDER BY %s IS NULL, %s %s, id DESC", runs_keys[sk].sql,
                        runs_keys[sk].sql, desc ? "DESC" : "ASC");
    if (query->limit > 0)
        sqlite3_str_appendf(sql, " LIMIT %d", query->limit);
    int sql_err = sqlite3_str_errcode(sql);
    char *text = sqlite3_str_finish(sql);
    if (sql_err || !text) {
        sqlite3_free(text);
        return bn_fail(err, BN_ENOMEM, "runs: out of memory");
    }
    sqlite3_stmt *q;
    int prepared = sqlite3_prepare_v2(bn_store_db(s), text, -1, &q, NULL);
    sqlite3_free(text);
    if (prepared != SQLITE_OK)
        return bn_store_fail(s, err, "listing runs");
    sqlite3_bind_text(q, 1, split, -1, SQLITE_TRANSIENT);
    for (int i = 0; i < query->nfilters; i++) {
        if (runs_keys[keyidx[i]].text)
            sqlite3_bind_text(q, i + 2, vals[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_double(q, i + 2, strtod(vals[i], NULL));
    }
    int rc = BN_OK, step;
    int mcol = RUNS_NCOLUMNS; /* m_accuracy, m_log_loss, m_roc_auc, m_f1_macro */
    while (rc == BN_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
        bn_run r;
        if ((rc = runs_row(s, q, &r, err)))
            break;
        double m[4];
        for (int j = 0; j < 4; j++)
            m[j] = sqlite3_column_type(q, mcol + j) == SQLITE_NULL
                       ? NAN
                       : sqlite3_column_double(q, mcol + j);
        rc = fn(ctx, &r, m);
        bn_run_free(&r);
    }
    if (rc == BN_OK && step != SQLITE_DONE)
        rc = bn_store_fail(s, err, "listing runs");
    sqlite3_finalize(q);
    return rc;
}
