/*
 * merge.c: `bottleneck-extract merge --db OUT.db IN.db...` (see merge.h and
 * the usage text below).
 *
 * Each input is checked on its own first (bn_store_open read-only refuses a
 * file that is not a bottleneck database or has another schema version), then
 * ATTACHed to the output's connection and copied in one transaction:
 *
 *   feature sets  matched by their whole definition (source, model, weights
 *                 digest, layer, pooling, size, resize, preprocess, dim,
 *                 dtype, precision), not by id or name; a name the output already uses
 *                 for another definition is an error naming both files;
 *   vectors       INSERT OR IGNORE under the output's feature set id, with
 *                 their engine; a vector the output already holds with other
 *                 bytes is kept and counted (the portable build, or
 *                 OpenBLAS' kernels on another CPU, round differently:
 *                 docs/SCALING.md);
 *   images        INSERT OR IGNORE by path; the same path with another
 *                 content, label or split is an error naming both files;
 *   failures      copied unless the path is stored as an image in the output
 *                 (it succeeded elsewhere), and removed when it is.
 *
 * Columns of featuresets, images and failures are the ones both databases
 * have (PRAGMA table_info), so tables that gain columns in later schemas
 * (model_format, model_path, ...) merge as they are.
 * Every statement uses INSERT OR IGNORE, so merging again changes nothing, and
 * each input is one transaction: a kill leaves the output with whole inputs
 * only, and re-running the same command finishes the job.
 */
#include "merge.h"
#include "pack.h"

#include "dataset.h"
#include "error.h"
#include "json.h"
#include "store.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MERGE_EXIT_FATAL 1
#define MERGE_EXIT_USAGE 2
#define MERGE_EXIT_INCOMPLETE 3

static const char merge_usage[] =
    "usage: bottleneck-extract merge --db OUT.db [--expect N] [--quiet] [--json] IN.db...\n"
    "\n"
    "Copy the images, feature sets, vectors and failures of each IN.db into OUT.db (created\n"
    "if needed), one transaction per input. Feature sets are matched by their definition\n"
    "(weights digest, layer, pooling, size, resize, preprocess, dim, dtype, precision).\n"
    "Merging the databases of 'bottleneck-extract --shard K/N' gives the database one run\n"
    "over the whole dataset gives. Merging again changes nothing; a killed merge is\n"
    "finished by running the same command again.\n"
    "\n"
    "  --db FILE     the output database\n"
    "  --expect N    the inputs are the N shards of one --shard K/N run: check that each\n"
    "                holds exactly one shard and that every shard 1..N is there once; name\n"
    "                the missing and duplicated shards and the images in the wrong file\n"
    "  --quiet       no progress on stderr\n"
    "  --json        print a JSON summary on stdout\n"
    "\n"
    "Errors (the input concerned is not merged, those before it are kept): a file that is\n"
    "not a bottleneck database or has another schema version; a feature set name used for\n"
    "two definitions; an image path with different content, label or split in two files.\n"
    "\n"
    "Exit status: 0 merged; 1 error; 2 usage error; 3 merged, but --expect found missing or\n"
    "duplicated shards.\n";

typedef struct {
    long images, vectors, featuresets, failures, differing;
} merge_counts;

static int merge_exec(bn_store *out, const char *sql, bn_error *err, const char *what) {
    if (sqlite3_exec(bn_store_db(out), sql, NULL, NULL, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, what);
    return BN_OK;
}

/* "a", "b", ... : the columns of table present in both main and src, except
 * id (row ids are each database's own). Column names come from PRAGMA
 * table_info of our own schema, quoted as identifiers. */
/* The columns of `table` both databases have, but id, as a list for INSERT
 * (cols) and as expressions over `src.<table> AS s` for its SELECT (exprs):
 * a row's dataset id becomes the output's id of the dataset of the same name
 * (merge_datasets has made sure it exists). */
static int merge_columns2(sqlite3 *db, const char *table, char *cols, char *exprs, size_t cap);

static int merge_columns(sqlite3 *db, const char *table, char *cols, size_t cap) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT m.name FROM pragma_table_info(?1, 'main') m"
             " JOIN pragma_table_info(?1, 'src') s ON s.name = m.name"
             " WHERE m.name != 'id' ORDER BY m.cid");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    size_t len = 0;
    cols[0] = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (strchr(name, '"'))
            continue; /* never in our schema; not worth escaping */
        int n = snprintf(cols + len, cap - len, "%s\"%s\"", len ? ", " : "", name);
        if (n < 0 || (size_t)n >= cap - len) {
            sqlite3_finalize(st);
            return -1;
        }
        len += (size_t)n;
    }
    return sqlite3_finalize(st) == SQLITE_OK && len > 0 ? 0 : -1;
}

static int merge_columns2(sqlite3 *db, const char *table, char *cols, char *exprs, size_t cap) {
    if (merge_columns(db, table, cols, cap))
        return -1;
    size_t len = 0;
    exprs[0] = 0;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", cols);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        const char *e = strcmp(tok, "\"dataset\"") == 0
                            ? "(SELECT md.id FROM main.datasets md JOIN src.datasets sd"
                              " ON sd.name = md.name WHERE sd.id = s.dataset)"
                            : NULL;
        int n = e ? snprintf(exprs + len, cap - len, "%s%s", len ? ", " : "", e)
                  : snprintf(exprs + len, cap - len, "%ss.%s", len ? ", " : "", tok);
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* The datasets of the input's images and failures, by name: a new name is
 * added with its kind and root; an output that holds no image yet and only
 * its untouched 'default' dataset takes the first one's name, as the first
 * extract into a new database does, so that merged shards equal one run. */
static int merge_datasets(bn_store *out, bn_error *err) {
    int rc = merge_exec(out,
                        "UPDATE main.datasets SET (name, kind, root) = (SELECT name, kind, root"
                        " FROM src.datasets WHERE id = (SELECT min(dataset) FROM src.images))"
                        " WHERE kind = 'default' AND (SELECT count(*) FROM main.datasets) = 1"
                        " AND NOT EXISTS (SELECT 1 FROM main.images)"
                        " AND EXISTS (SELECT 1 FROM src.images)",
                        err, "adopt the default dataset");
    if (rc)
        return rc;
    return merge_exec(out,
                      "INSERT OR IGNORE INTO main.datasets (name, kind, root)"
                      " SELECT name, kind, root FROM src.datasets WHERE id IN"
                      " (SELECT dataset FROM src.images UNION SELECT dataset FROM src.failures)"
                      " ORDER BY id",
                      err, "copy datasets");
}

/* Copy one feature set's definition and vectors; *differing counts vectors
 * the output holds with other bytes. */
static int merge_featureset(bn_store *out, const char *in_path, sqlite3_stmt *src_fs,
                            merge_counts *c, bn_error *err) {
    sqlite3 *db = bn_store_db(out);
    int64_t old_id = sqlite3_column_int64(src_fs, 0);
    const char *name = (const char *)sqlite3_column_text(src_fs, 1);
    /* Columns 2..12 of src_fs: source, model, weights_sha256, layer, pooling,
     * size, resize, preprocess, dim, dtype, precision: the definition. */
    static const char find_sql[] =
        "SELECT id FROM main.featuresets WHERE source IS ?1 AND model IS ?2 AND weights_sha256 "
        "IS ?3 AND layer IS ?4 AND pooling IS ?5 AND size IS ?6 AND resize IS ?7 AND "
        "preprocess IS ?8 AND dim IS ?9 AND dtype IS ?10 AND precision IS ?11";
    sqlite3_stmt *st = NULL;
    int64_t new_id = 0;
    int rc = BN_OK;
    if (sqlite3_prepare_v2(db, find_sql, -1, &st, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, "find a feature set");
    for (int i = 0; i < 11; i++)
        sqlite3_bind_value(st, i + 1, sqlite3_column_value(src_fs, i + 2));
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        new_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        return bn_store_fail(out, err, "find a feature set");
    if (!new_id) {
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM main.featuresets WHERE name = ?1", -1, &st,
                               NULL) != SQLITE_OK)
            return bn_store_fail(out, err, "find a feature set");
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        s = sqlite3_step(st);
        sqlite3_finalize(st);
        if (s == SQLITE_ROW)
            return bn_fail(err, BN_EINVAL,
                           "%s: feature set '%s' has another definition in %s (model, weights, "
                           "layer, pooling, size, resize, preprocess, dim, dtype or precision "
                           "differ)",
                           in_path, name, bn_store_path(out));
        /* Every column both have (model_format, model_path, ... of later
         * schemas), the definition among them. */
        char cols[2048], sql[5000];
        if (merge_columns(db, "featuresets", cols, sizeof cols))
            return bn_store_fail(out, err, "read the columns");
        snprintf(sql, sizeof sql,
                 "INSERT INTO main.featuresets (%s) SELECT %s FROM src.featuresets WHERE id = ?1",
                 cols, cols);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
            return bn_store_fail(out, err, "copy a feature set");
        sqlite3_bind_int64(st, 1, old_id);
        s = sqlite3_step(st);
        sqlite3_finalize(st);
        if (s != SQLITE_DONE)
            return bn_store_fail(out, err, "copy a feature set");
        new_id = sqlite3_last_insert_rowid(db);
        c->featuresets++;
    }
    static const char *const vec_sql[] = {
        "INSERT OR IGNORE INTO main.vectors (featureset, sha256, vector, engine, engine_version)"
        " SELECT ?1, sha256, vector, engine, engine_version FROM src.vectors WHERE featureset = ?2",
        "SELECT count(*) FROM src.vectors s JOIN main.vectors m ON m.featureset = ?1 AND"
        " m.sha256 = s.sha256 WHERE s.featureset = ?2 AND m.vector != s.vector"};
    for (int q = 0; q < 2 && !rc; q++) {
        if (sqlite3_prepare_v2(db, vec_sql[q], -1, &st, NULL) != SQLITE_OK)
            return bn_store_fail(out, err, "copy vectors");
        sqlite3_bind_int64(st, 1, new_id);
        sqlite3_bind_int64(st, 2, old_id);
        s = sqlite3_step(st);
        if (q == 0 && s == SQLITE_DONE)
            c->vectors += sqlite3_changes(db);
        else if (q == 1 && s == SQLITE_ROW)
            c->differing += sqlite3_column_int64(st, 0);
        else
            rc = bn_store_fail(out, err, "copy vectors");
        sqlite3_finalize(st);
    }
    return rc;
}

/* The body of one input's transaction. */
static int merge_one(bn_store *out, const char *in_path, merge_counts *c, bn_error *err) {
    sqlite3 *db = bn_store_db(out);
    sqlite3_stmt *st = NULL;
    int rc;
    /* Images first: a conflict stops the input before anything is copied. */
    if (sqlite3_prepare_v2(db,
                           "SELECT s.path, s.sha256, m.sha256, s.label, m.label,"
                           " coalesce(s.split, '(none)'), coalesce(m.split, '(none)')"
                           " FROM src.images s JOIN src.datasets sd ON sd.id = s.dataset"
                           " JOIN main.datasets md ON md.name = sd.name"
                           " JOIN main.images m ON m.path = s.path AND m.dataset = md.id"
                           " WHERE s.sha256 != m.sha256 OR s.label != m.label"
                           " OR s.split IS NOT m.split LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, "compare images");
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        const char *a = (const char *)sqlite3_column_text(st, 1),
                   *b = (const char *)sqlite3_column_text(st, 2);
        if (strcmp(a, b))
            bn_fail(err, BN_EINVAL,
                    "%s: image %s has other content (sha256 %.12s...) in %s (%.12s...)", in_path, p,
                    a, bn_store_path(out), b);
        else if (strcmp((const char *)sqlite3_column_text(st, 3),
                        (const char *)sqlite3_column_text(st, 4)))
            bn_fail(err, BN_EINVAL, "%s: image %s has label '%s', but '%s' in %s", in_path, p,
                    (const char *)sqlite3_column_text(st, 3),
                    (const char *)sqlite3_column_text(st, 4), bn_store_path(out));
        else
            bn_fail(err, BN_EINVAL, "%s: image %s has split '%s', but '%s' in %s", in_path, p,
                    (const char *)sqlite3_column_text(st, 5),
                    (const char *)sqlite3_column_text(st, 6), bn_store_path(out));
        sqlite3_finalize(st);
        return BN_EINVAL;
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return bn_store_fail(out, err, "compare images");

    if (sqlite3_prepare_v2(db,
                           "SELECT id, name, source, model, weights_sha256, layer, pooling, size,"
                           " resize, preprocess, dim, dtype, precision FROM src.featuresets"
                           " ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, "read feature sets");
    rc = BN_OK;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW)
        rc = merge_featureset(out, in_path, st, c, err);
    sqlite3_finalize(st);
    if (rc)
        return rc;
    if (s != SQLITE_DONE)
        return bn_store_fail(out, err, "read feature sets");

    if ((rc = merge_datasets(out, err)))
        return rc;
    static const char *const tables[] = {"images", "failures"};
    for (int t = 0; t < 2; t++) {
        char cols[2048], exprs[4096], sql[8192];
        if (merge_columns2(db, tables[t], cols, exprs, sizeof cols))
            return bn_store_fail(out, err, "read the columns");
        snprintf(sql, sizeof sql,
                 t == 0
                     ? "INSERT OR IGNORE INTO main.images (%s) SELECT %s FROM src.images AS s"
                     : "INSERT OR IGNORE INTO main.failures (%s) SELECT %s FROM src.failures AS s"
                       " WHERE NOT EXISTS (SELECT 1 FROM main.images mi JOIN main.datasets md"
                       " ON md.id = mi.dataset JOIN src.datasets sd ON sd.name = md.name"
                       " WHERE sd.id = s.dataset AND mi.path = s.path)",
                 cols, exprs);
        if ((rc = merge_exec(out, sql, err, "copy images and failures")))
            return rc;
        if (t == 0)
            c->images += sqlite3_changes(db);
        else
            c->failures += sqlite3_changes(db);
    }
    return merge_exec(out,
                      "DELETE FROM main.failures WHERE EXISTS (SELECT 1 FROM main.images i"
                      " WHERE i.path = failures.path AND i.dataset = failures.dataset)",
                      err, "clear failures");
}

/* --expect N: which shard of n the paths of the attached input belong to:
 * 1..n, 0 if it holds none, -1 if several (*example is then a path of another
 * shard than the first, malloc'ed). */
static int merge_shard_of_input(bn_store *out, int n, int *shard, char **example, long *paths,
                                bn_error *err) {
    sqlite3_stmt *st;
    *shard = 0;
    *example = NULL;
    *paths = 0;
    if (sqlite3_prepare_v2(bn_store_db(out),
                           "SELECT path FROM src.images UNION SELECT path FROM src.failures", -1,
                           &st, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, "read paths");
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        int k = bn_dataset_shard_of(p, n);
        (*paths)++;
        if (*shard == 0)
            *shard = k;
        else if (*shard != k && !*example) {
            *shard = -1;
            *example = strdup(p);
        }
    }
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? BN_OK : bn_store_fail(out, err, "read paths");
}

/* The options; -1 to go on, else the exit status (0 after --help). */
static int merge_options(int argc, char **argv, const char **out_path, int *expect, int *quiet,
                         int *json) {
    enum { O_DB = 256, O_EXPECT, O_QUIET, O_JSON, O_HELP };
    static const struct option longopts[] = {
        {"db", required_argument, 0, O_DB}, {"expect", required_argument, 0, O_EXPECT},
        {"quiet", no_argument, 0, O_QUIET}, {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},   {0, 0, 0, 0},
    };
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_DB: *out_path = optarg; break;
        case O_EXPECT: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1 << 20) {
                fprintf(stderr,
                        "bottleneck-extract merge: --expect %s: expected a positive "
                        "integer\n",
                        optarg);
                return MERGE_EXIT_USAGE;
            }
            *expect = (int)v;
            break;
        }
        case O_QUIET: *quiet = 1; break;
        case O_JSON: *json = 1; break;
        case O_HELP: fputs(merge_usage, stdout); return 0;
        default:
            fprintf(stderr,
                    "bottleneck-extract merge: unknown or incomplete option '%s'\n"
                    "Try 'bottleneck-extract merge --help'.\n",
                    argv[optind - 1]);
            return MERGE_EXIT_USAGE;
        }
    }
    if (!*out_path || optind >= argc) {
        fprintf(stderr, "bottleneck-extract merge: --db OUT.db and at least one input are "
                        "required\nTry 'bottleneck-extract merge --help'.\n");
        return MERGE_EXIT_USAGE;
    }
    struct stat so, si;
    int out_exists = stat(*out_path, &so) == 0;
    for (int i = optind; i < argc; i++)
        if (out_exists && stat(argv[i], &si) == 0 && si.st_dev == so.st_dev &&
            si.st_ino == so.st_ino) {
            fprintf(stderr, "bottleneck-extract merge: %s: is the output database itself\n",
                    argv[i]);
            return MERGE_EXIT_USAGE;
        }
    return -1;
}

/* Input `in` merged into out in one transaction (ATTACHed as src), its
 * counts into *cnt; with expect, the shard it holds into *shard (and an
 * example path that is not in it, for the message). */
static int merge_input(bn_store *out, const char *in, int expect, merge_counts *cnt, int *shard,
                       char **example, bn_error *err) {
    /* Checked alone first: not a database, another schema version. */
    bn_store *probe = NULL;
    int rc = bn_store_open(&probe, in, BN_STORE_READONLY, err);
    bn_store_close(probe);
    if (rc)
        return rc;
    sqlite3 *db = bn_store_db(out);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "ATTACH ?1 AS src", -1, &st, NULL) != SQLITE_OK)
        return bn_store_fail(out, err, "attach");
    sqlite3_bind_text(st, 1, in, -1, SQLITE_TRANSIENT);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return bn_fail(err, BN_EDB, "%s: cannot attach: %s", in, sqlite3_errmsg(db));
    rc = bn_store_begin(out, err);
    if (!rc && (rc = merge_one(out, in, cnt, err)) == BN_OK)
        rc = bn_store_commit(out, err);
    if (rc)
        bn_store_rollback(out);
    long paths = 0;
    if (!rc && expect)
        rc = merge_shard_of_input(out, expect, shard, example, &paths, err);
    sqlite3_exec(db, "DETACH src", NULL, NULL, NULL);
    return rc;
}

/* With --expect N: every shard held by exactly one input (an input with no
 * image and no failure cannot say which shard it is: as many empty inputs
 * as missing shards are taken to be those shards). Prints each problem;
 * the counts go to *missing and *duplicated. */
static void merge_check_shards(const int *shard, char **inputs, int nin, int expect, int *missing,
                               int *duplicated) {
    int empty = 0;
    *missing = *duplicated = 0;
    for (int i = 0; i < nin; i++)
        empty += shard[i] == 0;
    for (int k = 1; k <= expect; k++) {
        int first = -1;
        for (int i = 0; i < nin; i++) {
            if (shard[i] != k)
                continue;
            if (first >= 0) {
                fprintf(stderr, "shard %d/%d: in both %s and %s (duplicated images)\n", k, expect,
                        inputs[first], inputs[i]);
                (*duplicated)++;
            } else {
                first = i;
            }
        }
        *missing += first < 0;
    }
    for (int k = 1; k <= expect && *missing != empty; k++) {
        int found = 0;
        for (int i = 0; i < nin; i++)
            found |= shard[i] == k;
        if (!found)
            fprintf(stderr,
                    "shard %d/%d: no input holds it (its images are missing; run "
                    "bottleneck-extract --shard %d/%d)\n",
                    k, expect, k, expect);
    }
    if (*missing == empty)
        *missing = 0;
    else if (empty)
        fprintf(stderr,
                "(%d inputs hold no images: empty shards, or runs that stored "
                "nothing)\n",
                empty);
}

int extract_merge_main(int argc, char **argv) {
    const char *out_path = NULL;
    int quiet = 0, json = 0, expect = 0;
    int status = merge_options(argc, argv, &out_path, &expect, &quiet, &json);
    if (status >= 0)
        return status;
    status = 0;
    int nin = argc - optind;
    char **inputs = argv + optind;

    /* Past a file size limit (ulimit -f) a write fails with EFBIG, reported
     * like a full disk, instead of SIGXFSZ killing us. */
    signal(SIGXFSZ, SIG_IGN);
    bn_error err;
    bn_error_clear(&err);
    bn_store *out = NULL;
    if (bn_store_open(&out, out_path, BN_STORE_CREATE, &err)) {
        fprintf(stderr, "bottleneck-extract merge: %s\n", err.msg);
        return MERGE_EXIT_FATAL;
    }
    merge_counts total = {0};
    int *shard = calloc(nin > 0 ? (size_t)nin : 1, sizeof *shard);
    if (!shard) {
        bn_store_close(out);
        fprintf(stderr, "bottleneck-extract merge: out of memory\n");
        return MERGE_EXIT_FATAL;
    }
    int merged = 0, mixed = 0;
    /* Every input is merged, whatever --expect finds (exit 3 says "merged,
     * but"); only an error stops the loop. */
    for (int i = 0; i < nin && status != MERGE_EXIT_FATAL; i++) {
        const char *in = inputs[i];
        merge_counts cnt = {0};
        char *example = NULL;
        if (merge_input(out, in, expect, &cnt, &shard[i], &example, &err)) {
            free(example);
            status = MERGE_EXIT_FATAL;
            break;
        }
        merged++;
        total.images += cnt.images;
        total.vectors += cnt.vectors;
        total.featuresets += cnt.featuresets;
        total.failures += cnt.failures;
        total.differing += cnt.differing;
        if (!quiet)
            fprintf(stderr,
                    "%s: %ld new images, %ld new vectors, %ld new feature sets, %ld failures\n", in,
                    cnt.images, cnt.vectors, cnt.featuresets, cnt.failures);
        if (cnt.differing && !quiet)
            fprintf(stderr,
                    "%s: %ld vectors differ from those already in %s (another engine?); the "
                    "output keeps its own\n",
                    in, cnt.differing, out_path);
        if (shard[i] < 0) {
            fprintf(stderr,
                    "%s: holds images of several shards of %d (%s is not in its "
                    "first image's shard)\n",
                    in, expect, example);
            status = MERGE_EXIT_INCOMPLETE;
            mixed++;
        }
        free(example);
    }
    if (status == MERGE_EXIT_FATAL)
        fprintf(stderr, "bottleneck-extract merge: %s (%d inputs merged before it are kept)\n",
                err.msg, merged);
    if (merged > 0)
        extract_pack_store(out, "bottleneck-extract merge", quiet);
    int missing = 0, duplicated = 0;
    /* An input of several shards was not made with --shard K/expect: which
     * shards are missing or doubled then means nothing. */
    if (mixed && status != MERGE_EXIT_FATAL)
        fprintf(stderr,
                "--expect %d: %d of the %d inputs are not one shard of %d (made with another "
                "--shard K/N, or not sharded): no shard check\n",
                expect, mixed, nin, expect);
    else if (expect && status != MERGE_EXIT_FATAL) {
        merge_check_shards(shard, inputs, nin, expect, &missing, &duplicated);
        if (missing || duplicated)
            status = MERGE_EXIT_INCOMPLETE;
    }
    if (!quiet && status != MERGE_EXIT_FATAL)
        fprintf(stderr, "%s: %d input%s merged: %ld new images, %ld new vectors\n", out_path,
                merged, merged == 1 ? "" : "s", total.images, total.vectors);
    if (json) {
        printf("{\"db\":");
        bn_json_string(stdout, out_path);
        printf(",\"inputs\":%d,\"merged\":%d,\"images\":%ld,\"vectors\":%ld,\"featuresets\":%ld,"
               "\"failures\":%ld,\"differing\":%ld,\"missing_shards\":%d,"
               "\"duplicated_shards\":%d,\"inputs_of_several_shards\":%d,\"ok\":%s",
               nin, merged, total.images, total.vectors, total.featuresets, total.failures,
               total.differing, missing, duplicated, mixed, status == 0 ? "true" : "false");
        if (status == MERGE_EXIT_FATAL) {
            printf(",\"error\":");
            bn_json_string(stdout, err.msg);
        }
        printf("}\n");
    }
    free(shard);
    bn_store_close(out);
    return status;
}
