/*
 * test_trainjob: the train job as a library call (common/trainjob.c,
 * bn_trainjob_run) on the real GoogLeNet embeddings of ../shared, imported
 * with bn_importer_run:
 *   - a sweep of C chosen on validation: the chosen candidate is the best by
 *     validation accuracy (ties: lower log loss), it is the final run, and the
 *     database holds exactly what the job reports (runs, chosen, metrics);
 *   - 3-fold cross-validation: every fold scored, the chosen point refitted
 *     on the whole training split and stored as the final 'refit' run;
 *   - a choice without a validation split or folds is refused, nothing stored;
 *   - the progress events arrive once per candidate and once per refit.
 * GoogLeNet's ImageNet features separate cats from dogs well (scikit-learn's
 * LogisticRegression(C=0.1) on these rows: validation accuracy above 0.95),
 * so an accuracy under 0.9 is a broken job, not noise.
 */
#include "check.h"
#include "importer.h"
#include "support.h"
#include "trainjob.h"

#include <stdlib.h>
#include <string.h>

static double q1(bn_store *s, const char *sql, int64_t arg) {
    sqlite3_stmt *q;
    double v = -1;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, arg);
        if (sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_double(q, 0);
    } else {
        fprintf(stderr, "query failed: %s\n", sql);
    }
    sqlite3_finalize(q);
    return v;
}

typedef struct {
    int loaded, scored, refitted;
} counts;

static void on_loaded(void *ctx, const bn_trainjob *j, double s) {
    (void)j, (void)s;
    ((counts *)ctx)->loaded++;
}
static void on_scored(void *ctx, const bn_trainjob *j, int i) {
    (void)j, (void)i;
    ((counts *)ctx)->scored++;
}
static void on_refitted(void *ctx, const bn_trainjob *j) {
    (void)j;
    ((counts *)ctx)->refitted++;
}

static void grid_of_C(bn_train_opts *grid, const double *C, int n) {
    for (int i = 0; i < n; i++) {
        bn_train_opts_default(&grid[i]);
        grid[i].C = C[i];
    }
}

int main(void) {
    const char *tmpdir = support_mkdtemp("bn-test-trainjob");
    if (!tmpdir)
        return 1;
    char db[600];
    snprintf(db, sizeof db, "%s/t.db", tmpdir);
    bn_error err;
    bn_error_clear(&err);
    bn_importer_opts io = {.db = db,
                           .name = "googlenet",
                           .npy = shared_path("features/googlenet/catsdogs/embeddings.npy"),
                           .index = shared_path("features/googlenet/catsdogs/index.tsv"),
                           .quiet = 1};
    bn_importer_result ir;
    CHECK_MSG(bn_importer_run(&io, &ir, &err) == BN_OK, "%s", err.msg);
    CHECK_INT(ir.rows, 3000);
    bn_store *s = NULL;
    CHECK_MSG(bn_store_open(&s, db, 0, &err) == BN_OK, "%s", err.msg);
    if (!s)
        return check_done();

    /* A sweep of C chosen on validation. */
    counts seen = {0};
    bn_trainjob_events ev = {
        .ctx = &seen, .loaded = on_loaded, .scored = on_scored, .refitted = on_refitted};
    const double Cs[3] = {0.001, 0.1, 10};
    bn_train_opts grid[3];
    grid_of_C(grid, Cs, 3);
    bn_trainjob_opts o = {.select = "accuracy", .grid = grid, .ngrid = 3, .events = &ev};
    bn_trainjob j;
    CHECK_MSG(bn_trainjob_run(s, &o, &j, &err) == BN_OK, "%s", err.msg);
    CHECK_STR(j.train, "train");
    CHECK_STR(j.valid ? j.valid : "(none)", "validation");
    CHECK(j.test == NULL);
    CHECK_INT(j.tr.n, 2000);
    CHECK_INT(j.va.n, 1000);
    CHECK_INT(j.k, 2);
    CHECK_STR(j.classes[0], "cat");
    CHECK_INT(seen.loaded, 1);
    CHECK_INT(seen.scored, 3);
    CHECK_INT(seen.refitted, 0);
    int best = 0;
    for (int i = 1; i < 3; i++) {
        const bn_metrics *a = &j.cand[i].valid_m, *b = &j.cand[best].valid_m;
        if (a->accuracy > b->accuracy || (a->accuracy == b->accuracy && a->log_loss < b->log_loss))
            best = i;
    }
    CHECK_INT(j.best, best);
    CHECK(!j.do_refit && j.final == &j.cand[best]);
    CHECK_MSG(j.cand[best].valid_m.accuracy > 0.9, "validation accuracy %g",
              j.cand[best].valid_m.accuracy);
    CHECK_INT((long long)q1(s, "SELECT count(*) FROM runs WHERE sweep = ?1", j.sweep), 3);
    CHECK_INT((long long)q1(s, "SELECT chosen FROM sweeps WHERE id = ?1", j.sweep),
              (long long)j.cand[best].run);
    CHECK_INT((long long)q1(s, "SELECT final FROM sweeps WHERE id = ?1", j.sweep),
              (long long)j.cand[best].run);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(q1(s,
                      "SELECT value FROM run_metrics WHERE run = ?1 AND split = 'validation'"
                      " AND metric = 'accuracy' AND class IS NULL",
                      j.cand[i].run),
                   j.cand[i].valid_m.accuracy, 1e-12);
        CHECK_NEAR(q1(s, "SELECT C FROM runs WHERE id = ?1", j.cand[i].run), Cs[i], 1e-12);
    }
    int64_t first_sweep = j.sweep;
    bn_trainjob_free(&j);

    /* 3-fold cross-validation on the training split, then the refit. */
    seen = (counts){0};
    o = (bn_trainjob_opts){.select = "log_loss",
                           .valid = "none",
                           .folds = 3,
                           .seed = 7,
                           .grid = grid + 1,
                           .ngrid = 1,
                           .events = &ev};
    CHECK_MSG(bn_trainjob_run(s, &o, &j, &err) == BN_OK, "%s", err.msg);
    CHECK_INT(j.folds, 3);
    CHECK_STR(j.select_on, "cv");
    CHECK_INT(j.cand[0].cv_n, 2000);
    CHECK_MSG(j.cand[0].cv[0] > 0.9 && j.cand[0].cv[0] <= 1, "cv accuracy %g", j.cand[0].cv[0]);
    CHECK_NEAR(j.cand[0].score, j.cand[0].cv[1], 0); /* chosen by log loss */
    CHECK(j.do_refit && j.final == &j.refit && j.refit.has_head);
    CHECK_INT(seen.refitted, 1);
    CHECK_INT(
        (long long)q1(s, "SELECT count(*) FROM runs WHERE sweep = ?1 AND role = 'refit'", j.sweep),
        1);
    CHECK_INT((long long)q1(s, "SELECT count(*) FROM run_metrics WHERE run = ?1 AND split = 'cv'",
                            j.cand[0].run),
              BN_NMETRICS + 1);
    CHECK_NEAR(q1(s,
                  "SELECT value FROM run_metrics WHERE run = ?1 AND split = 'cv' AND metric = "
                  "'roc_auc'",
                  j.cand[0].run),
               j.cand[0].cv[2], 1e-12);
    bn_trainjob_free(&j);

    /* Two candidates and nothing to choose them on: refused, nothing stored. */
    long long sweeps = (long long)q1(s, "SELECT count(*) FROM sweeps WHERE ?1", 1);
    o = (bn_trainjob_opts){.select = "accuracy", .valid = "none", .grid = grid, .ngrid = 2};
    CHECK(bn_trainjob_run(s, &o, &j, &err) == BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "choosing among 2 candidates") != NULL, "%s", err.msg);
    bn_trainjob_free(&j);
    CHECK_INT((long long)q1(s, "SELECT count(*) FROM sweeps WHERE ?1", 1), sweeps);
    CHECK_INT((long long)q1(s, "SELECT max(id) FROM sweeps WHERE ?1", 1), first_sweep + 1);

    bn_store_close(s);
    support_remove_tree(tmpdir);
    return check_done();
}
