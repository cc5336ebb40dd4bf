/*
 * test_extractor.c: the extract pipeline through its C API (extractor.h),
 * for what the programs cannot provoke from outside.
 *
 * - A vector with NaN or infinity is never stored: with block5_conv3's
 *   biases infinite, every image is recorded as a failure naming the
 *   non-finite value, and no vector (and no image row) is written.
 * - --self-check: with sound weights, every batch's first image is checked
 *   against the exact engine (counted), nothing fails, and each stored
 *   vector records the engine and version that computed it.
 */
#include "check.h"
#include "conv.h"
#include "dataset.h"
#include "extractor.h"
#include "image.h"
#include "store.h"
#include "support.h"
#include "weights.h"

static long count(bn_store *s, const char *sql) {
    sqlite3_stmt *q;
    long n = -1;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            n = (long)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

static int extract(const char *db, const bn_vgg16_weights *w, int self_check, bn_dataset *ds,
                   bn_extractor_stats *st, bn_store **store) {
    bn_error err;
    bn_extractor *x = NULL;
    bn_extractor_opts o;
    bn_extractor_opts_default(&o);
    o.image.size = 64;
    o.batch = 3;
    o.self_check = self_check;
    int rc = bn_store_open(store, db, BN_STORE_CREATE, &err);
    if (!rc)
        rc = bn_extractor_create(&x, *store, w, &o, &err);
    if (!rc)
        rc = bn_extractor_run(x, ds, NULL, NULL, st, &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    bn_extractor_free(x);
    return rc;
}

int main(int argc, char **argv) {
    (void)argc;
    bn_error err;
    const char *dir = support_mkdtemp("bn-test-extractor");
    CHECK(dir != NULL);
    CHECK_INT(bn_image_init(argv[0], &err), BN_OK);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/ds/cat' '%s/ds/dog' && cd '%s/data/catsdogs/train' && "
             "cp $(ls cat/* | sort | head -3) '%s/ds/cat/' && cp $(ls dog/* | sort | head -2) "
             "'%s/ds/dog/'",
             dir, dir, getenv("BN_SHARED"), dir, dir);
    CHECK_INT(system(cmd), 0);
    bn_dataset ds;
    CHECK_INT(bn_dataset_scan(&ds, support_tmp_path("ds"), &err), BN_OK);
    CHECK_INT((int)ds.n, 5);

    bn_vgg16_weights w;
    CHECK_INT(bn_weights_load(&w, shared_path("models/vgg16_random_notop.h5"), &err), BN_OK);

    /* Sound weights, --self-check 1: three batches (the run's first holds one
     * image, then 3 + 1), each checked. */
    bn_store *s = NULL;
    bn_extractor_stats st;
    CHECK_INT(extract(support_tmp_path("ok.db"), &w, 1, &ds, &st, &s), BN_OK);
    CHECK_INT((int)st.extracted, 5);
    CHECK_INT((int)st.failed, 0);
    CHECK_INT((int)st.self_checks, 3);
    char sql[256]; /* (the direct engine's id names OpenBLAS' kernels too: graph.h) */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM vectors WHERE (engine = '%s' OR engine LIKE '%s+openblas-%%')"
             " AND engine_version = %d",
             bn_conv_engine_id(BN_CONV_AUTO), bn_conv_engine_id(BN_CONV_AUTO),
             BN_CONV_ENGINE_VERSION);
    CHECK_INT((int)count(s, sql), 5);
    bn_store_close(s);

    /* Absurd weights: block5_conv3's biases infinite. (Overflowing kernels
     * give inf - inf = NaN, which ReLU turns into 0: finite.) */
    bn_conv_weights *last = &w.conv[BN_VGG16_NCONV - 1];
    for (int i = 0; i < last->cout; i++)
        last->bias[i] = INFINITY;
    s = NULL;
    CHECK_INT(extract(support_tmp_path("inf.db"), &w, 0, &ds, &st, &s), BN_OK);
    CHECK_INT((int)st.extracted, 0);
    CHECK_INT((int)st.failed, 5);
    CHECK_INT((int)count(s, "SELECT count(*) FROM vectors"), 0);
    CHECK_INT((int)count(s, "SELECT count(*) FROM images"), 0);
    CHECK_INT((int)count(s, "SELECT count(*) FROM failures WHERE reason LIKE "
                            "'%gave a non-finite value%vector not stored'"),
              5);
    bn_store_close(s);

    bn_weights_free(&w);
    bn_dataset_free(&ds);
    bn_image_shutdown();
    support_remove_tree(dir);
    return check_done();
}
