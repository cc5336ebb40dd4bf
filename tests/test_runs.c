/*
 * test_runs: classify's records (common/runs.c) written and read back.
 *   - a run with 300 classes whose names hold quotes, backslashes, control
 *     bytes and UTF-8, and a 3,000-byte note: every class name, the note and
 *     every hyperparameter come back exactly (the classes' JSON is written by
 *     SQLite's json_insert and read by its json_each; the old hand-made
 *     builder formatted pieces through a 512-byte buffer, and text that
 *     outgrew it would have been cut here);
 *   - params is valid JSON whose numbers give the doubles back exactly;
 *   - metrics put and get; a listing whose 64 filters make a query of more
 *     than 512 bytes, and the errors a bad filter or sort key gets.
 */
#include "check.h"
#include "runs.h"
#include "support.h"

#include <stdlib.h>
#include <string.h>

static int count_rows(void *ctx, const bn_run *r, const double m[4]) {
    (void)r, (void)m;
    ++*(int *)ctx;
    return BN_OK;
}

static int listed(bn_store *s, const char **filters, int n, const char *sort, bn_error *err) {
    int rows = 0;
    bn_runs_query q = {.filters = filters, .nfilters = n, .sort = sort};
    int rc = bn_runs_list(s, &q, count_rows, &rows, err);
    return rc ? -rc : rows;
}

static double q_double(bn_store *s, const char *sql, int64_t id) {
    sqlite3_stmt *q;
    double v = NAN;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(q, 1, id);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
            v = sqlite3_column_double(q, 0);
    }
    sqlite3_finalize(q);
    return v;
}

int main(void) {
    const char *tmpdir = support_mkdtemp("bn-test-runs");
    if (!tmpdir)
        return 1;
    char path[600];
    snprintf(path, sizeof path, "%s/r.db", tmpdir);
    bn_error err = {0};
    bn_store *s;
    CHECK_MSG(bn_store_open(&s, path, BN_STORE_CREATE, &err) == BN_OK, "%s", err.msg);
    int64_t fs;
    bn_featureset f = {.name = "f", .source = "import", .model = "f", .dim = 3, .dtype = "f32"};
    CHECK(bn_store_featureset_get_or_create(s, &f, &fs, &err) == BN_OK);

    enum { K = 300 };
    char *classes[K];
    for (int c = 0; c < K; c++) {
        classes[c] = malloc(80);
        snprintf(classes[c], 80, "class %03d \"quoted\" back\\slash tab\tnl\n\x01 caf\xc3\xa9 %s",
                 c, c % 2 ? "odd" : "even");
    }
    char note[3001];
    for (int i = 0; i < 3000; i++)
        note[i] = (char)('a' + i % 26);
    note[3000] = '\0';
    bn_run r;
    memset(&r, 0, sizeof r);
    r.featureset = fs;
    r.role = "candidate";
    r.train_splits = "train";
    bn_train_opts_default(&r.opts);
    r.opts.C = 0.1;
    r.opts.tol = 1e-4 / 3;
    r.opts.seed = 18446744073709551557ULL; /* the largest 64-bit prime: all 64 bits */
    r.k = K;
    r.classes = classes;
    r.n_train = 7;
    r.dim = 3;
    r.info.iterations = 12;
    r.info.objective = NAN; /* stored as NULL */
    r.note = note;
    int64_t id = 0;
    CHECK(bn_store_begin(s, &err) == BN_OK);
    CHECK_MSG(bn_runs_put(s, &r, &id, &err) == BN_OK, "%s", err.msg);
    CHECK(bn_runs_put_metric(s, id, "cv", "accuracy", 0.75, &err) == BN_OK);
    CHECK(bn_store_commit(s, &err) == BN_OK);
    CHECK(id > 0);

    bn_run got;
    CHECK_MSG(bn_runs_get(s, id, &got, &err) == BN_OK, "%s", err.msg);
    CHECK_INT(got.k, K);
    int same = 0;
    for (int c = 0; c < K && c < got.k; c++)
        same += strcmp(got.classes[c], classes[c]) == 0;
    CHECK_INT(same, K);
    CHECK_STR(got.note, note);
    CHECK(got.opts.C == 0.1 && got.opts.tol == 1e-4 / 3 && got.opts.seed == r.opts.seed);
    CHECK_INT(got.info.iterations, 12);
    bn_run_free(&got);

    /* params: JSON that gives the doubles back. */
    CHECK(q_double(s, "SELECT json_valid(params) FROM runs WHERE id = ?1", id) == 1);
    CHECK(q_double(s, "SELECT json_extract(params, '$.C') FROM runs WHERE id = ?1", id) == 0.1);
    CHECK(q_double(s, "SELECT json_extract(params, '$.tol') FROM runs WHERE id = ?1", id) ==
          1e-4 / 3);
    CHECK(q_double(s, "SELECT json_array_length(classes) FROM runs WHERE id = ?1", id) == K);

    double v = 0;
    int found = 0;
    CHECK(bn_runs_get_metric(s, id, "cv", "accuracy", &v, &found, &err) == BN_OK);
    CHECK(found && v == 0.75);
    CHECK(bn_runs_get_metric(s, id, "cv", "roc_auc", &v, &found, &err) == BN_OK && !found);

    /* Listing: 64 filters (a query well over 512 bytes), then errors. */
    const char *filters[64];
    for (int i = 0; i < 64; i++)
        filters[i] = i % 2 ? "C >= 0.01" : "solver = lbfgs";
    CHECK_INT(listed(s, filters, 64, "C", &err), 1);
    const char *none[] = {"C > 1"};
    CHECK_INT(listed(s, none, 1, NULL, &err), 0);
    const char *bad[] = {"colour = red"};
    CHECK_INT(listed(s, bad, 1, NULL, &err), -BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "KEY one of id, sweep, featureset") != NULL, "%s", err.msg);
    CHECK_INT(listed(s, NULL, 0, "colour", &err), -BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "--sort 'colour'") != NULL, "%s", err.msg);

    for (int c = 0; c < K; c++)
        free(classes[c]);
    bn_store_close(s);
    support_remove_tree(tmpdir);
    return check_done();
}
