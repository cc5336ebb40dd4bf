/*
 * test_store: the database layer (common/store.c) through its C API.
 *   - a new database is migrated to the latest schema version; opening a
 *     missing file read-only fails naming it and creates nothing;
 *   - a feature set written by get_or_create reads back whole through
 *     bn_store_featureset_get (every column, NULLs as NULL), the same
 *     settings find the same id, and a different dim for them is an error;
 *   - _find by name and by id, _pick of the only set, and the errors when
 *     there is none or several (naming them);
 *   - images and vectors: put, has, the image's hash; a rolled back
 *     transaction leaves nothing;
 *   - eight processes opening one new database at once all succeed (the
 *     switch to WAL does not wait for SQLite's busy handler: CI saw two
 *     extracts fail there), rounds of them, each on a new file.
 */
#include "check.h"
#include "store.h"
#include "support.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Forks `n` processes that open `path` read-write at the same instant
 * (a pipe releases them together); returns how many failed, and prints
 * their errors. */
static int open_at_once(const char *path, int n) {
    int gate[2];
    if (pipe(gate))
        return n;
    pid_t pids[16];
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            char c;
            close(gate[1]);
            if (read(gate[0], &c, 1) != 0)
                _exit(3);
            bn_error err = {0};
            bn_store *s = NULL;
            int rc = bn_store_open(&s, path, BN_STORE_CREATE, &err);
            if (rc != BN_OK)
                fprintf(stderr, "child %d: %s\n", i, err.msg);
            bn_store_close(s);
            _exit(rc == BN_OK ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]); /* EOF releases every child */
    int failed = 0;
    for (int i = 0; i < n; i++) {
        int status = 0;
        if (pids[i] < 0 || waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed++;
    }
    return failed;
}

static void same(const char *a, const char *b, const char *what) {
    CHECK_MSG((!a && !b) || (a && b && strcmp(a, b) == 0), "%s: '%s' != '%s'", what, a ? a : "NULL",
              b ? b : "NULL");
}

int main(void) {
    const char *tmpdir = support_mkdtemp("bn-test-store");
    if (!tmpdir)
        return 1;
    char path[600], missing[600];
    snprintf(path, sizeof path, "%s/s.db", tmpdir);
    snprintf(missing, sizeof missing, "%s/none.db", tmpdir);
    bn_error err = {0};
    bn_store *s = NULL;
    CHECK(bn_store_open(&s, missing, BN_STORE_READONLY, &err) != BN_OK);
    CHECK_MSG(strstr(err.msg, "none.db") != NULL, "%s", err.msg);
    CHECK(access(missing, F_OK) != 0);
    CHECK_MSG(bn_store_open(&s, path, BN_STORE_CREATE, &err) == BN_OK, "%s", err.msg);
    if (!s)
        return check_done();
    CHECK_INT(bn_store_version(s), bn_store_latest_version());

    int64_t id = 0, again = 0;
    char name[64];
    int dim = 0;
    CHECK(bn_store_featureset_pick(s, NULL, &id, &dim, name, sizeof name, &err) == BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "has no feature sets") != NULL, "%s", err.msg);

    bn_featureset fs = {.source = "extract",
                        .model = "vgg16",
                        .weights_sha256 = "ab12",
                        .layer = "block5_pool",
                        .pooling = "avg",
                        .resize = "squash",
                        .preprocess = "caffe",
                        .size = 224,
                        .dim = 512,
                        .dtype = "f16",
                        .model_format = "keras-h5"}; /* no name (derived), no model_path */
    CHECK(bn_store_featureset_get_or_create(s, &fs, &id, &err) == BN_OK);
    CHECK(bn_store_featureset_get_or_create(s, &fs, &again, &err) == BN_OK);
    CHECK_INT(again, id);
    bn_featureset bad = fs;
    bad.dim = 513;
    CHECK(bn_store_featureset_get_or_create(s, &bad, &again, &err) == BN_EDB);
    CHECK_MSG(strstr(err.msg, "has dim 512, expected 513") != NULL, "%s", err.msg);

    bn_featureset got;
    CHECK_MSG(bn_store_featureset_get(s, id, &got, &err) == BN_OK, "%s", err.msg);
    same(got.name, "vgg16/block5_pool/avg/224/squash/caffe/f16", "name");
    same(got.source, fs.source, "source");
    same(got.model, fs.model, "model");
    same(got.weights_sha256, fs.weights_sha256, "weights_sha256");
    same(got.layer, fs.layer, "layer");
    same(got.pooling, fs.pooling, "pooling");
    same(got.resize, fs.resize, "resize");
    same(got.preprocess, fs.preprocess, "preprocess");
    same(got.dtype, fs.dtype, "dtype");
    same(got.model_format, fs.model_format, "model_format");
    same(got.model_path, NULL, "model_path");
    CHECK_INT(got.size, 224);
    CHECK_INT(got.dim, 512);
    /* What get returns creates nothing new: it is the inverse. */
    CHECK(bn_store_featureset_get_or_create(s, &got, &again, &err) == BN_OK);
    CHECK_INT(again, id);
    bn_store_featureset_release(&got);
    CHECK(got.name == NULL);
    CHECK(bn_store_featureset_get(s, id + 100, &got, &err) == BN_EINVAL);
    CHECK(got.name == NULL);

    CHECK(bn_store_featureset_pick(s, NULL, &again, &dim, name, sizeof name, &err) == BN_OK);
    CHECK(again == id && dim == 512);
    CHECK_STR(name, "vgg16/block5_pool/avg/224/squash/caffe/f16");
    bn_featureset imp = {.name = "g", .source = "import", .model = "g", .dim = 4, .dtype = "f32"};
    int64_t gid;
    CHECK(bn_store_featureset_get_or_create(s, &imp, &gid, &err) == BN_OK);
    CHECK(bn_store_featureset_pick(s, NULL, &again, &dim, name, sizeof name, &err) == BN_EINVAL);
    CHECK_MSG(strstr(err.msg, "2 feature sets") && strstr(err.msg, "'g'"), "%s", err.msg);
    char dtype[8], idtext[32];
    CHECK(bn_store_featureset_find(s, "g", &again, &dim, dtype, &err) == BN_OK);
    CHECK(again == gid && dim == 4 && strcmp(dtype, "f32") == 0);
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    CHECK(bn_store_featureset_find(s, idtext, &again, NULL, NULL, &err) == BN_OK && again == id);
    CHECK(bn_store_featureset_find(s, "nope", &again, NULL, NULL, &err) == BN_EINVAL);

    /* Images and vectors; a rollback leaves nothing. */
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const float v[4] = {1, -2, 3.5f, 0};
    int has = -1;
    char back[65];
    CHECK(bn_store_begin(s, &err) == BN_OK);
    CHECK(bn_store_put_image(s, 1, "a/x.jpg", "a", "train", sha, 3, 2, 10, &err) == BN_OK);
    CHECK(bn_store_put_vector(s, gid, sha, v, 4, "f32", &err) == BN_OK);
    bn_store_rollback(s);
    CHECK(bn_store_has_vector(s, gid, sha, &has, &err) == BN_OK && has == 0);
    CHECK(bn_store_begin(s, &err) == BN_OK);
    CHECK(bn_store_put_image(s, 1, "a/x.jpg", "a", "train", sha, 3, 2, 10, &err) == BN_OK);
    CHECK(bn_store_put_vector(s, gid, sha, v, 4, "f32", &err) == BN_OK);
    CHECK(bn_store_commit(s, &err) == BN_OK);
    CHECK(bn_store_has_vector(s, gid, sha, &has, &err) == BN_OK && has == 1);
    CHECK(bn_store_image_sha256(s, 1, "a/x.jpg", back, &has, &err) == BN_OK && has == 1);
    CHECK_STR(back, sha);
    CHECK(bn_store_image_sha256(s, 1, "a/y.jpg", back, &has, &err) == BN_OK && has == 0);

    bn_store_close(s);
    for (int round = 0; round < 20; round++) {
        char fresh[640];
        snprintf(fresh, sizeof fresh, "%s/at-once-%d.db", tmpdir, round);
        CHECK_MSG(open_at_once(fresh, 8) == 0, "round %d", round);
        bn_store *o = NULL;
        CHECK(bn_store_open(&o, fresh, BN_STORE_READONLY, &err) == BN_OK);
        if (o)
            CHECK_INT(bn_store_version(o), bn_store_latest_version());
        bn_store_close(o);
    }

    support_remove_tree(tmpdir);
    return check_done();
}
