/*
 * export.c: `bottleneck-extract export` (see export.h and the usage text).
 *
 * The index has the columns import reads (row, relpath, label, split,
 * sha256), so `import` of an export gives back the same images and the same
 * vector bytes: f32 sets are copied as stored; f16 sets are widened to f32,
 * which is exact, and importing them with --dtype f16 narrows them back to
 * the same halves.
 *
 * Rows are ordered by path, streamed from SQLite (bounded memory whatever the
 * set's size) into temporary files renamed into place at the end: the .npy
 * and .tsv are both complete or both absent (the .tsv is renamed last; if
 * that rename fails the .npy is removed again).
 */
#include "export.h"

#include "error.h"
#include "f16.h"
#include "json.h"
#include "npy.h"
#include "sql_end.h"
#include "store.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char export_usage[] =
    "usage: bottleneck-extract export --db FILE [--features NAME] --npy OUT.npy --index OUT.tsv\n"
    "                                 [--split S] [--quiet] [--json]\n"
    "\n"
    "Write one feature set's vectors as a float32 .npy matrix (rows, dim) and a tab-separated\n"
    "index whose line i describes row i: row, relpath, label, split, sha256. The reverse of\n"
    "'bottleneck-extract import': importing the two files gives back the same vectors.\n"
    "\n"
    "  --db FILE        the database (read only)\n"
    "  --features NAME  feature set name or id (SELECT id, name FROM featuresets); needed\n"
    "                   when the database holds more than one\n"
    "  --npy FILE       the vectors to write (f16 sets are widened to float32, exactly)\n"
    "  --index FILE     the index to write\n"
    "  --split S        only images of this split\n"
    "  --quiet          no summary on stderr\n"
    "  --json           print a JSON summary on stdout\n"
    "\n"
    "Rows are in path order. Both files are written to temporary names and renamed into\n"
    "place when complete: on any error neither is left behind.\n"
    "\n"
    "Exit status: 0 written; 1 error (nothing written); 2 usage error.\n";

/* The rows of the export; split NULL means all. */
static int export_prepare(sqlite3 *db, int64_t fs, const char *split, int count,
                          sqlite3_stmt **st) {
    const char *sql = count ? "SELECT count(*) FROM images i JOIN vectors v ON v.sha256 = i.sha256"
                              " WHERE v.featureset = ?1 AND (?2 IS NULL OR i.split = ?2)"
                            : "SELECT i.path, i.label, i.split, i.sha256, v.vector"
                              " FROM images i JOIN vectors v ON v.sha256 = i.sha256"
                              " WHERE v.featureset = ?1 AND (?2 IS NULL OR i.split = ?2)"
                              " ORDER BY i.path";
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(*st, 1, fs);
    if (split)
        sqlite3_bind_text(*st, 2, split, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(*st, 2);
    return 0;
}

/* A TSV field must not hold a tab or a newline: import could not read it back. */
static int export_field_ok(const char *s) {
    return !s || !strpbrk(s, "\t\r\n");
}

static int export_run(bn_store *store, const char *name, const char *split, const char *npy_path,
                      const char *tsv_path, long *rows_out, int *dim_out, bn_error *err) {
    sqlite3 *db = bn_store_db(store);
    int64_t fs;
    int dim;
    char dtype[8];
    int rc = bn_store_featureset_find(store, name, &fs, &dim, dtype, err);
    if (rc)
        return rc;
    *dim_out = dim;
    int f16 = strcmp(dtype, "f16") == 0;
    size_t blob_bytes = (size_t)dim * (f16 ? 2 : 4);

    /* One read transaction: the count and the rows see the same snapshot,
     * even while an extraction writes to the database. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return bn_store_fail(store, err, "begin");
    if (export_prepare(db, fs, split, 1, &st) || sqlite3_step(st) != SQLITE_ROW) {
        rc = bn_store_fail(store, err, "count the rows");
        sqlite3_finalize(st);
        bn_sql_end(db, "ROLLBACK");
        return rc;
    }
    int64_t rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (rows == 0) {
        bn_sql_end(db, "ROLLBACK");
        return bn_fail(err, BN_EINVAL, "%s: feature set %s has no vectors%s%s",
                       bn_store_path(store), name, split ? " in split " : "", split ? split : "");
    }

    bn_npy_writer w;
    FILE *tsv = NULL;
    char tsv_tmp[4200];
    float *row = malloc((size_t)dim * sizeof *row);
    if (!row) {
        bn_sql_end(db, "ROLLBACK");
        return bn_fail(err, BN_ENOMEM, "%s: out of memory", npy_path);
    }
    rc = bn_npy_create(&w, npy_path, rows, dim, err);
    if (rc)
        goto out;
    snprintf(tsv_tmp, sizeof tsv_tmp, "%s.tmp.XXXXXX", tsv_path);
    int fd = mkstemp(tsv_tmp);
    if (fd < 0 || !(tsv = fdopen(fd, "w"))) {
        rc = bn_fail(err, BN_EIO, "%s: cannot create a temporary file: %s", tsv_path,
                     strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tsv_tmp);
        }
        bn_npy_abort(&w);
        goto out;
    }
    fputs("row\trelpath\tlabel\tsplit\tsha256\n", tsv);
    if (export_prepare(db, fs, split, 0, &st)) {
        rc = bn_store_fail(store, err, "read the vectors");
        goto fail;
    }
    int64_t i = 0;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW && i < rows) {
        const char *path = (const char *)sqlite3_column_text(st, 0);
        const char *label = (const char *)sqlite3_column_text(st, 1);
        const char *sp = (const char *)sqlite3_column_text(st, 2);
        const char *sha = (const char *)sqlite3_column_text(st, 3);
        const void *blob = sqlite3_column_blob(st, 4);
        if ((size_t)sqlite3_column_bytes(st, 4) != blob_bytes) {
            rc = bn_fail(err, BN_EFORMAT, "%s: the vector of %s has %d bytes, expected %zu",
                         bn_store_path(store), path, sqlite3_column_bytes(st, 4), blob_bytes);
            goto fail;
        }
        if (!export_field_ok(path) || !export_field_ok(label) || !export_field_ok(sp)) {
            rc = bn_fail(err, BN_EFORMAT,
                         "%s: %s: a tab or newline in the path, label or split "
                         "cannot be written to a TSV index",
                         bn_store_path(store), path);
            goto fail;
        }
        if (f16)
            bn_f16_to_f32_array(blob, row, (size_t)dim);
        else
            memcpy(row, blob, blob_bytes);
        if ((rc = bn_npy_write_rows(&w, row, 1, err)))
            goto fail;
        if (fprintf(tsv, "%lld\t%s\t%s\t%s\t%s\n", (long long)i, path, label, sp ? sp : "", sha) <
            0) {
            rc = bn_fail(err, BN_EIO, "%s: cannot write: %s", tsv_path, strerror(errno));
            goto fail;
        }
        i++;
    }
    if (s != SQLITE_DONE && s != SQLITE_ROW) {
        rc = bn_store_fail(store, err, "read the vectors");
        goto fail;
    }
    if (fflush(tsv) != 0 || fsync(fileno(tsv)) != 0) {
        rc = bn_fail(err, BN_EIO, "%s: cannot write: %s", tsv_path, strerror(errno));
        goto fail;
    }
    int e = fclose(tsv);
    tsv = NULL;
    if (e != 0) {
        rc = bn_fail(err, BN_EIO, "%s: cannot write: %s", tsv_path, strerror(errno));
        goto fail;
    }
    if ((rc = bn_npy_commit(&w, err))) /* removes its temporary file on failure */
        goto fail;
    if (rename(tsv_tmp, tsv_path) != 0) {
        rc = bn_fail(err, BN_EIO, "%s: cannot write: %s", tsv_path, strerror(errno));
        unlink(npy_path); /* both or neither */
        goto fail;
    }
    *rows_out = (long)rows;
    goto out;
fail:
    bn_npy_abort(&w);
    if (tsv)
        fclose(tsv);
    unlink(tsv_tmp);
out:
    sqlite3_finalize(st);
    bn_sql_end(db, "ROLLBACK");
    free(row);
    return rc;
}

/* path with its folder resolved (the file itself may not exist yet), into
 * out; the path as given when the folder cannot be resolved. */
static void export_resolve(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
             slash ? path : ".");
    char *real = realpath(dir, NULL);
    if (real)
        snprintf(out, n, "%s/%s", real, slash ? slash + 1 : path);
    else
        snprintf(out, n, "%s", path);
    free(real);
}

/* Would --npy and --index write the same file (the second renamed over the
 * first)? */
static int export_same_file(const char *a, const char *b) {
    char ra[8300], rb[8300];
    export_resolve(a, ra, sizeof ra);
    export_resolve(b, rb, sizeof rb);
    return strcmp(ra, rb) == 0;
}

int extract_export_main(int argc, char **argv) {
    const char *db_path = NULL, *name = NULL, *npy = NULL, *tsv = NULL, *split = NULL;
    int quiet = 0, json = 0;
    enum { O_DB = 256, O_FEATURES, O_NPY, O_INDEX, O_SPLIT, O_QUIET, O_JSON, O_HELP };
    static const struct option longopts[] = {
        {"db", required_argument, 0, O_DB},
        {"features", required_argument, 0, O_FEATURES},
        {"npy", required_argument, 0, O_NPY},
        {"index", required_argument, 0, O_INDEX},
        {"split", required_argument, 0, O_SPLIT},
        {"quiet", no_argument, 0, O_QUIET},
        {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_DB: db_path = optarg; break;
        case O_FEATURES: name = optarg; break;
        case O_NPY: npy = optarg; break;
        case O_INDEX: tsv = optarg; break;
        case O_SPLIT: split = optarg; break;
        case O_QUIET: quiet = 1; break;
        case O_JSON: json = 1; break;
        case O_HELP: fputs(export_usage, stdout); return 0;
        default:
            fprintf(stderr,
                    "bottleneck-extract export: unknown or incomplete option '%s'\n"
                    "Try 'bottleneck-extract export --help'.\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (!db_path || !npy || !tsv || optind < argc) {
        fprintf(stderr, "bottleneck-extract export: %s\nTry 'bottleneck-extract export --help'.\n",
                optind < argc ? "unexpected argument" : "--db, --npy and --index are required");
        return 2;
    }
    bn_error err;
    bn_error_clear(&err);
    bn_store *store = NULL;
    long rows = 0;
    int dim = 0;
    int rc = bn_store_open(&store, db_path, BN_STORE_READONLY, &err);
    /* no --features: the database's only feature set (as classify and
     * verify take it), else an error naming them */
    char picked[512];
    if (!rc && !name) {
        int64_t id;
        int d;
        rc = bn_store_featureset_pick(store, NULL, &id, &d, picked, sizeof picked, &err);
        name = picked;
    }
    if (!rc)
        rc = bn_store_check_output(store, npy, "--npy", &err);
    if (!rc)
        rc = bn_store_check_output(store, tsv, "--index", &err);
    if (!rc && export_same_file(npy, tsv))
        rc = bn_fail(&err, BN_EINVAL, "--npy and --index name the same file (%s)", npy);
    if (!rc)
        rc = export_run(store, name, split, npy, tsv, &rows, &dim, &err);
    bn_store_close(store);
    if (rc) {
        fprintf(stderr, "bottleneck-extract export: %s\n", err.msg);
        if (json) {
            bn_json_error(stdout, err.msg);
        }
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "%s: %ld vectors of dim %d written to %s and %s\n", db_path, rows, dim, npy,
                tsv);
    if (json) {
        printf("{\"ok\":true,\"rows\":%ld,\"dim\":%d,\"npy\":", rows, dim);
        bn_json_string(stdout, npy);
        printf(",\"index\":");
        bn_json_string(stdout, tsv);
        printf("}\n");
    }
    return 0;
}
