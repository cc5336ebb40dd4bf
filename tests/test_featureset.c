/*
 * test_featureset: loading a feature set's vectors into a matrix
 * (common/featureset.c) on a database the test writes through store.h:
 * rows and labels by split, in path order; f32 and f16 BLOBs; an image whose
 * content is stored twice under two paths; errors for NaN, Inf, a BLOB of
 * the wrong length, an empty split and unknown labels; loading by paths; and
 * the in-place row permutation cross-validation uses; the connection's
 * memory-map setting restored after a load.
 */
#include "check.h"
#include "f16.h"
#include "featureset.h"
#include "store.h"

#include <sqlite3.h>

#include <unistd.h>

static char tmpdir[] = "/tmp/bn-test-featureset.XXXXXX";

static long long mmap_size(bn_store *s) {
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_prepare_v2(bn_store_db(s), "PRAGMA mmap_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Row r of the test data: dim values r*10 + j (exact in f16 too). */
static void row_values(int r, float *v, int dim) {
    for (int j = 0; j < dim; j++)
        v[j] = (float)(r * 10 + j);
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/f.db", tmpdir);
    bn_error err = {0};
    bn_store *s;
    CHECK_MSG(bn_store_open(&s, path, BN_STORE_CREATE, &err) == BN_OK, "%s", err.msg);
    const int dim = 5;
    int64_t f32, f16;
    bn_featureset a = {.name = "a", .source = "import", .model = "a", .dim = dim, .dtype = "f32"};
    bn_featureset b = {.name = "b", .source = "import", .model = "b", .dim = dim, .dtype = "f16"};
    CHECK(bn_store_begin(s, &err) == BN_OK);
    CHECK(bn_store_featureset_get_or_create(s, &a, &f32, &err) == BN_OK);
    CHECK(bn_store_featureset_get_or_create(s, &b, &f16, &err) == BN_OK);
    /* Paths out of order on purpose; z.jpg has the content of b.jpg. */
    static const struct {
        const char *path, *label, *split, *sha;
        int row;
    } imgs[] = {
        {"tr/d.jpg", "dog", "train", "s3", 3},      {"tr/b.jpg", "cat", "train", "s1", 1},
        {"tr/c.jpg", "bird", "train", "s2", 2},     {"tr/z.jpg", "cat", "train", "s1", 1},
        {"va/a.jpg", "dog", "validation", "s4", 4}, {"va/e.jpg", "emu", "validation", "s5", 5},
    };
    for (size_t i = 0; i < sizeof imgs / sizeof imgs[0]; i++) {
        float v[5];
        row_values(imgs[i].row, v, dim);
        CHECK(bn_store_put_image(s, 1, imgs[i].path, imgs[i].label, imgs[i].split, imgs[i].sha, 1,
                                 1, 1, &err) == BN_OK);
        CHECK(bn_store_put_vector(s, f32, imgs[i].sha, v, dim, "f32", &err) == BN_OK);
        CHECK(bn_store_put_vector(s, f16, imgs[i].sha, v, dim, "f16", &err) == BN_OK);
    }
    /* An image without a vector in either set, among the others. */
    CHECK(bn_store_put_image(s, 1, "tr/m.jpg", "cat", "train", "s9", 1, 1, 1, &err) == BN_OK);
    CHECK(bn_store_commit(s, &err) == BN_OK);

    /* By split, sorted by path; labels interned in sorted order. Loaded
     * twice per set: first by one scan of the set's vectors (the split is a
     * large part of the images), then, once 60 more images without vectors
     * make it a small part, each vector by its key. */
    for (int which = 0; which < 4; which++) {
        bn_features f;
        if (which == 2) {
            CHECK(bn_store_begin(s, &err) == BN_OK);
            for (int i = 0; i < 60; i++) {
                char p[32], sha[32];
                snprintf(p, sizeof p, "extra/%02d.jpg", i);
                snprintf(sha, sizeof sha, "x%02d", i);
                CHECK(bn_store_put_image(s, 1, p, "cat", "extra", sha, 1, 1, 1, &err) == BN_OK);
            }
            CHECK(bn_store_commit(s, &err) == BN_OK);
        }
        int rc = bn_featureset_load(s, which % 2 ? f16 : f32, "train", &f, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        if (rc)
            continue;
        /* The load reads through SQLite's memory map and leaves the
         * connection as it found it (mmap off). */
        CHECK_INT(mmap_size(s), 0);
        CHECK_INT(f.n, 4);
        CHECK_INT(f.dim, dim);
        CHECK_STR(f.path[0], "tr/b.jpg");
        CHECK_STR(f.path[1], "tr/c.jpg");
        CHECK_STR(f.path[2], "tr/d.jpg");
        CHECK_STR(f.path[3], "tr/z.jpg");
        CHECK_INT(f.nlabels, 3);
        CHECK_STR(f.labels[0], "bird");
        CHECK_STR(f.labels[1], "cat");
        CHECK_STR(f.labels[2], "dog");
        int want_label[4] = {1, 0, 2, 1}, want_row[4] = {1, 2, 3, 1};
        for (int i = 0; i < 4; i++) {
            CHECK_INT(f.label[i], want_label[i]);
            float v[5];
            row_values(want_row[i], v, dim);
            CHECK_MSG(memcmp(f.x + (size_t)i * dim, v, sizeof v) == 0, "row %d of %s (%s)", i,
                      which % 2 ? "f16" : "f32", which < 2 ? "scan" : "by key");
        }
        /* Encoding against a run's classes, and an unknown label. */
        char *classes[3] = {"bird", "cat", "dog"};
        int y[4];
        CHECK(bn_featureset_encode(&f, classes, 3, y, "train", &err) == BN_OK);
        CHECK(y[0] == 1 && y[1] == 0 && y[2] == 2 && y[3] == 1);
        char *two[2] = {"cat", "dog"};
        CHECK(bn_featureset_encode(&f, two, 2, y, "train", &err) == BN_EINVAL);
        CHECK_MSG(strstr(err.msg, "label 'bird' (e.g. tr/c.jpg)") != NULL, "%s", err.msg);

        /* Permutation: new row i is old row perm[i], everything moves together. */
        int perm[4] = {2, 0, 3, 1};
        CHECK(bn_featureset_permute(&f, perm, &err) == BN_OK);
        CHECK_STR(f.path[0], "tr/d.jpg");
        CHECK_STR(f.path[1], "tr/b.jpg");
        CHECK_STR(f.path[2], "tr/z.jpg");
        CHECK_STR(f.path[3], "tr/c.jpg");
        CHECK_INT(f.label[0], 2);
        CHECK_INT(f.label[3], 0);
        float v3[5], v2[5];
        row_values(3, v3, dim);
        row_values(2, v2, dim);
        CHECK(memcmp(f.x, v3, sizeof v3) == 0);
        CHECK(memcmp(f.x + 3 * dim, v2, sizeof v2) == 0);
        bn_featureset_free(&f);
    }

    /* Every image, and by paths (in the order given). */
    {
        bn_features f;
        CHECK(bn_featureset_load(s, f32, NULL, &f, &err) == BN_OK);
        CHECK_INT(f.n, 6);
        CHECK_INT(f.nlabels, 4);
        bn_featureset_free(&f);
        int64_t ids[2] = {6, 1}; /* va/e.jpg, tr/d.jpg: rows in insertion order */
        CHECK(bn_featureset_load_images(s, f16, ids, 2, &f, &err) == BN_OK);
        CHECK_INT(f.n, 2);
        CHECK_STR(f.path[0], "va/e.jpg");
        CHECK(f.x[0] == 50 && f.x[dim] == 30);
        CHECK_STR(f.labels[f.label[0]], "emu");
        bn_featureset_free(&f);
        int64_t missing[1] = {99};
        CHECK(bn_featureset_load_images(s, f32, missing, 1, &f, &err) == BN_EINVAL);
        CHECK(strstr(err.msg, "no image with id 99") != NULL);
        /* Rows of another dataset: none here. */
        bn_rows other = {.dataset = 2};
        CHECK(bn_featureset_load_rows(s, f32, &other, &f, &err) == BN_EINVAL);
        bn_rows mine = {.dataset = 1, .split = "validation"};
        CHECK(bn_featureset_load_rows(s, f32, &mine, &f, &err) == BN_OK);
        CHECK_INT(f.n, 2);
        bn_featureset_free(&f);
    }

    /* Errors. */
    {
        bn_features f;
        CHECK(bn_featureset_load(s, f32, "test", &f, &err) == BN_EINVAL);
        CHECK_MSG(strstr(err.msg, "no vectors in split 'test' (splits with vectors: train (4), "
                                  "validation (2))") != NULL,
                  "%s", err.msg);
        sqlite3 *db = bn_store_db(s);
        /* A NaN in the f32 vector of s5, an Inf in its f16 one. */
        float bad[5] = {1, 2, NAN, 4, 5};
        CHECK(bn_store_put_vector(s, f32, "s5", bad, dim, "f32", &err) == BN_OK);
        CHECK(bn_featureset_load(s, f32, "validation", &f, &err) == BN_EFORMAT);
        CHECK_MSG(strstr(err.msg, "the vector of va/e.jpg has NaN at 2") != NULL, "%s", err.msg);
        bad[2] = INFINITY;
        CHECK(bn_store_put_vector(s, f16, "s5", bad, dim, "f16", &err) == BN_OK);
        CHECK(bn_featureset_load(s, f16, "validation", &f, &err) == BN_EFORMAT);
        CHECK_MSG(strstr(err.msg, "has Inf at 2") != NULL, "%s", err.msg);
        /* A BLOB one float short. */
        CHECK(sqlite3_exec(db,
                           "UPDATE vectors SET vector = substr(vector, 1, 16) WHERE sha256 = 's4'",
                           NULL, NULL, NULL) == SQLITE_OK);
        CHECK(bn_featureset_load(s, f32, "validation", &f, &err) == BN_EFORMAT);
        CHECK_MSG(strstr(err.msg, "va/a.jpg has 16 bytes, expected 20 (5 x f32)") != NULL, "%s",
                  err.msg);
        CHECK(bn_featureset_load(s, 99, "train", &f, &err) == BN_EINVAL);
    }
    bn_store_close(s);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
