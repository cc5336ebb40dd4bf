/*
 * test_import: imports (common/importer.c, bn_importer_run) on the
 * real GoogLeNet embeddings of ../shared and on small hand-made inputs:
 * every stored vector equals its .npy row byte for byte, images get their
 * index's path, label, split and hash; re-importing is idempotent; hashes
 * come from --root or from images already stored; and every kind of bad
 * input (dtype, shape, row count, NaN, columns, conflicts) stores nothing.
 */
#include "check.h"
#include "hash.h"
#include "npy.h"

#include "importer.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/bn-test-import.XXXXXX";
static char lastmsg[4096];

/* Import with the options named as the subcommand's (--db, --name, --npy,
 * --index, --root, --dtype, --dataset, --model), a NULL-terminated list of
 * name, value pairs; the error goes to lastmsg. Returns 0 when stored, 1 on
 * an error, as the program's exit status. */
static int run(const char *first, ...) {
    bn_importer_opts o = {.quiet = 1};
    va_list ap;
    va_start(ap, first);
    for (const char *k = first; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        const char **slot = !strcmp(k, "--db")        ? &o.db
                            : !strcmp(k, "--name")    ? &o.name
                            : !strcmp(k, "--npy")     ? &o.npy
                            : !strcmp(k, "--index")   ? &o.index
                            : !strcmp(k, "--root")    ? &o.root
                            : !strcmp(k, "--dtype")   ? &o.dtype
                            : !strcmp(k, "--dataset") ? &o.dataset
                            : !strcmp(k, "--model")   ? &o.model
                                                      : NULL;
        if (!slot || !v) {
            fprintf(stderr, "test_import: bad option list at %s\n", k);
            exit(1);
        }
        *slot = v;
    }
    va_end(ap);
    bn_error err;
    bn_error_clear(&err);
    bn_importer_result r;
    int rc = bn_importer_run(&o, &r, &err);
    snprintf(lastmsg, sizeof lastmsg, "%s", rc ? err.msg : "");
    if (rc == BN_OK && (r.rows <= 0 || r.featureset <= 0 || !r.dataset[0])) {
        snprintf(lastmsg, sizeof lastmsg, "stored, but the result says %d rows, feature set %lld",
                 r.rows, (long long)r.featureset);
        return 1;
    }
    return rc ? 1 : 0;
}

static const char *tmp(const char *name) {
    static char buf[8][600];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 600, "%s/%s", tmpdir, name);
    return p;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static long long q1(const char *db, const char *sql) {
    sqlite3 *h;
    long long v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        else
            fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(h));
        sqlite3_finalize(q);
    }
    sqlite3_close(h);
    return v;
}

/* The stored vector of path in feature set fs (f32), into out; returns bytes. */
static int vector_of(const char *db, const char *fs, const char *path, float *out, int max) {
    sqlite3 *h;
    int bytes = -1;
    sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h, "SELECT vector FROM embeddings WHERE featureset = ?1 AND path = ?2",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, fs, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, path, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            bytes = sqlite3_column_bytes(q, 0);
            if (bytes <= max * 4)
                memcpy(out, sqlite3_column_blob(q, 0), (size_t)bytes);
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    return bytes;
}

/* Everything a failed import must leave as it was. */
static void check_unchanged(const char *db, long long images, long long fs, long long vectors) {
    CHECK_INT(q1(db, "SELECT count(*) FROM images"), images);
    CHECK_INT(q1(db, "SELECT count(*) FROM featuresets"), fs);
    CHECK_INT(q1(db, "SELECT count(*) FROM vectors"), vectors);
}

#define FAILS(needle, ...)                                                                         \
    do {                                                                                           \
        int st_ = run(__VA_ARGS__, NULL);                                                          \
        CHECK_MSG(st_ == 1 && strstr(lastmsg, needle), "status %d, message: %s", st_, lastmsg);    \
    } while (0)

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *npy = shared_path("features/googlenet/catsdogs/embeddings.npy");
    const char *index = shared_path("features/googlenet/catsdogs/index.tsv");
    char db[600], fresh[600]; /* tmp() reuses its buffers */
    snprintf(db, sizeof db, "%s", tmp("g.db"));
    snprintf(fresh, sizeof fresh, "%s", tmp("fresh.db"));

    /* The real embeddings. */
    int st = run("--db", db, "--name", "googlenet", "--npy", npy, "--index", index, NULL);
    CHECK_MSG(st == 0, "%s", lastmsg);
    CHECK_INT(q1(db, "SELECT count(*) FROM images"), 3000);
    CHECK_INT(q1(db, "SELECT count(*) FROM embeddings WHERE featureset = 'googlenet'"), 3000);
    CHECK_INT(q1(db, "SELECT count(*) FROM images WHERE split = 'train' AND label = 'dog'"), 1000);
    CHECK_INT(q1(db, "SELECT count(*) FROM images WHERE split = 'validation' AND label = 'cat'"),
              500);
    CHECK_INT(q1(db, "SELECT dim FROM featuresets WHERE name = 'googlenet' AND source = 'import'"
                     " AND model = 'googlenet' AND dtype = 'f32'"),
              1024);
    /* Line 1 of index.tsv (row 0) and row 1234: path, hash and vector. */
    CHECK_INT(q1(db, "SELECT count(*) FROM images WHERE path = 'train/cat/cat.10643.jpg' AND "
                     "sha256 = '8716775a61622e7d4b0b73bfc05861f981cbaa453ce6e305a9294d4f43c7ac0e'"),
              1);
    {
        float *all = NULL;
        int64_t rows, dim;
        bn_error err;
        CHECK(bn_npy_load(npy, &all, &rows, &dim, &err) == BN_OK);
        FILE *f = fopen(index, "r");
        char line[1024];
        int checked = 0;
        for (int i = -1; f && fgets(line, sizeof line, f); i++) {
            if (i < 0 || (i != 0 && i != 1234 && i != 2999))
                continue;
            char *rel = strchr(line, '\t') + 1;
            *strchr(rel, '\t') = '\0';
            float v[1024];
            CHECK_INT(vector_of(db, "googlenet", rel, v, 1024), 4096);
            CHECK_MSG(memcmp(v, all + (size_t)i * 1024, 4096) == 0, "row %d (%s) differs", i, rel);
            checked++;
        }
        if (f)
            fclose(f);
        CHECK_INT(checked, 3);
        free(all);
    }

    /* Again: the same rows, nothing duplicated. */
    CHECK_INT(run("--db", db, "--name", "googlenet", "--npy", npy, "--index", index, NULL), 0);
    check_unchanged(db, 3000, 1, 3000);

    /* Half floats: 2 bytes a value. */
    CHECK_INT(
        run("--db", db, "--name", "g16", "--dtype", "f16", "--npy", npy, "--index", index, NULL),
        0);
    CHECK_INT(q1(db, "SELECT min(length(vector)) FROM embeddings WHERE featureset = 'g16'"), 2048);
    check_unchanged(db, 3000, 2, 6000);

    /* Small hand-made inputs. */
    float m[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    bn_error err;
    CHECK(bn_npy_save(tmp("m.npy"), m, 3, 4, &err) == BN_OK);
    /* No sha256 column, paths already stored: their hashes are reused. */
    write_text(tmp("known.tsv"), "relpath\tlabel\tsplit\n"
                                 "train/cat/cat.10643.jpg\tcat\ttrain\n"
                                 "train/cat/cat.4738.jpg\tcat\ttrain\n"
                                 "validation/dog/dog.1666.jpg\tdog\tvalidation\n");
    long long have =
        q1(db, "SELECT count(*) FROM images WHERE path = 'validation/dog/dog.1666.jpg'");
    if (have == 1) {
        st = run("--db", db, "--name", "small", "--npy", tmp("m.npy"), "--index", tmp("known.tsv"),
                 NULL);
        CHECK_MSG(st == 0, "%s", lastmsg);
        check_unchanged(db, 3000, 3, 6003);
        float v[4];
        CHECK_INT(vector_of(db, "small", "train/cat/cat.4738.jpg", v, 4), 16);
        CHECK(v[0] == 5 && v[3] == 8);
    } else {
        CHECK_MSG(0, "validation/dog/dog.1666.jpg is not in index.tsv any more: update the test");
    }

    /* No sha256 column, new paths: --root hashes the files. */
    mkdir(tmp("root"), 0755);
    mkdir(tmp("root/a"), 0755);
    write_text(tmp("root/a/1.jpg"), "one");
    write_text(tmp("root/a/2.jpg"), "two");
    write_text(tmp("root/a/3.jpg"), "three");
    write_text(tmp("new.tsv"),
               "row\trelpath\tlabel\n0\ta/1.jpg\tx\n1\ta/2.jpg\ty\n2\ta/3.jpg\tx\n");
    FAILS("pass --root DIR", "--db", fresh, "--name", "n", "--npy", tmp("m.npy"), "--index",
          tmp("new.tsv"));
    check_unchanged(fresh, 0, 0, 0);
    st = run("--db", fresh, "--name", "n", "--npy", tmp("m.npy"), "--index", tmp("new.tsv"),
             "--root", tmp("root"), NULL);
    CHECK_MSG(st == 0, "%s", lastmsg);
    {
        char h[65], sql[200];
        bn_hash_sha256_hex("two", 3, h);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM images WHERE path = 'a/2.jpg' AND label = 'y' AND split IS "
                 "NULL AND sha256 = '%s'",
                 h);
        CHECK_INT(q1(fresh, sql), 1);
    }
    check_unchanged(fresh, 3, 1, 3);

    /* Bad input: an error naming the problem, and nothing stored. */
    double d12[12] = {0};
    FILE *f = fopen(tmp("f8.npy"), "wb");
    const char hdr[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }";
    char pad[128];
    int hl = (int)strlen(hdr) + 1;
    int total = 10 + hl, padn = (64 - total % 64) % 64;
    memset(pad, ' ', sizeof pad);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((hl + padn) & 0xff, f);
    fputc((hl + padn) >> 8, f);
    fputs(hdr, f);
    fwrite(pad, 1, (size_t)padn, f);
    fputc('\n', f);
    fwrite(d12, 8, 12, f);
    fclose(f);
    FAILS("float64", "--db", fresh, "--name", "bad", "--npy", tmp("f8.npy"), "--index",
          tmp("new.tsv"), "--root", tmp("root"));
    float m2[2 * 4] = {0};
    CHECK(bn_npy_save(tmp("two.npy"), m2, 2, 4, &err) == BN_OK);
    FAILS("has 2 rows", "--db", fresh, "--name", "bad", "--npy", tmp("two.npy"), "--index",
          tmp("new.tsv"), "--root", tmp("root"));
    float nan3[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, NAN};
    CHECK(bn_npy_save(tmp("nan.npy"), nan3, 3, 4, &err) == BN_OK);
    FAILS("NaN at column 3", "--db", fresh, "--name", "bad", "--npy", tmp("nan.npy"), "--index",
          tmp("new.tsv"), "--root", tmp("root"));
    float wide[3 * 5] = {0};
    CHECK(bn_npy_save(tmp("wide.npy"), wide, 3, 5, &err) == BN_OK);
    FAILS("feature set 'n' (id 1) has dim 4, expected 5", "--db", fresh, "--name", "n", "--npy",
          tmp("wide.npy"), "--index", tmp("new.tsv"), "--root", tmp("root"));
    write_text(tmp("relabel.tsv"), "relpath\tlabel\na/1.jpg\tx\na/2.jpg\tx\na/3.jpg\tx\n");
    FAILS("already stored with label 'y'", "--db", fresh, "--name", "n2", "--npy", tmp("m.npy"),
          "--index", tmp("relabel.tsv"), "--root", tmp("root"));
    write_text(tmp("other.tsv"), "relpath\tlabel\tsha256\na/1.jpg\tx\t" /* not the content */
                                 "0000000000000000000000000000000000000000000000000000000000000000"
                                 "\na/4.jpg\tx\t"
                                 "1111111111111111111111111111111111111111111111111111111111111111"
                                 "\na/5.jpg\tx\t"
                                 "2222222222222222222222222222222222222222222222222222222222222222"
                                 "\n");
    FAILS("already stored with other content", "--db", fresh, "--name", "n3", "--npy", tmp("m.npy"),
          "--index", tmp("other.tsv"));
    write_text(tmp("nolabel.tsv"), "relpath\tclass\na\tx\nb\tx\nc\tx\n");
    FAILS("no 'label' column", "--db", fresh, "--name", "n4", "--npy", tmp("m.npy"), "--index",
          tmp("nolabel.tsv"));
    write_text(tmp("fields.tsv"), "relpath\tlabel\na\tx\nb\tx\textra\nc\tx\n");
    FAILS("line 3: 3 fields, the header has 2", "--db", fresh, "--name", "n4", "--npy",
          tmp("m.npy"), "--index", tmp("fields.tsv"));
    write_text(tmp("rows.tsv"), "row\trelpath\tlabel\n0\ta\tx\n2\tb\tx\n1\tc\tx\n");
    FAILS("row is '2', expected 1", "--db", fresh, "--name", "n4", "--npy", tmp("m.npy"), "--index",
          tmp("rows.tsv"));
    write_text(tmp("dup.tsv"), "relpath\tlabel\na\tx\nb\tx\na\tx\n");
    FAILS("relpath 'a' appears twice", "--db", fresh, "--name", "n4", "--npy", tmp("m.npy"),
          "--index", tmp("dup.tsv"));
    write_text(tmp("abs.tsv"), "relpath\tlabel\n/etc/passwd\tx\nb\tx\nc\tx\n");
    FAILS("not a relative", "--db", fresh, "--name", "n4", "--npy", tmp("m.npy"), "--index",
          tmp("abs.tsv"));
    write_text(tmp("badsha.tsv"), "relpath\tlabel\tsha256\na\tx\tabc\nb\tx\tabc\nc\tx\tabc\n");
    FAILS("not 64 hexadecimal digits", "--db", fresh, "--name", "n4", "--npy", tmp("m.npy"),
          "--index", tmp("badsha.tsv"));
    write_text(tmp("same.tsv"),
               "relpath\tlabel\tsha256\n"
               "p\tx\t3333333333333333333333333333333333333333333333333333333333333333\n"
               "q\tx\t4444444444444444444444444444444444444444444444444444444444444444\n"
               "r\tx\t3333333333333333333333333333333333333333333333333333333333333333\n");
    FAILS("same sha256 but different vectors", "--db", fresh, "--name", "n5", "--npy", tmp("m.npy"),
          "--index", tmp("same.tsv"));
    FAILS("cannot open", "--db", fresh, "--name", "n6", "--npy", tmp("missing.npy"), "--index",
          tmp("new.tsv"));
    check_unchanged(fresh, 3, 1, 3);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
