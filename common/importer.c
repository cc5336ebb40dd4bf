/*
 * importer.c: vectors computed elsewhere (a .npy matrix and a TSV index)
 * stored as a feature set of their own (importer.h). Exports
 * bn_importer_run; `bottleneck-extract import` (extract/import.c) parses
 * its options, calls it and prints.
 *
 * Order of work, so that bad input stores nothing:
 *   1. parse the whole TSV index (columns, field counts, paths, hashes);
 *   2. open the .npy and check dtype, shape and row count (npy.c);
 *   3. open the database; give every line a content hash (its sha256 column,
 *      else the file under the root hashed, else the image already stored at
 *      that path) and check it against what the database holds;
 *   4. one transaction: the feature set, then per row the image (if new) and
 *      the vector, rows streamed from the .npy in chunks (bounded memory),
 *      each checked for NaN/Inf; any error rolls everything back.
 */
#include "importer.h"

#include "datasets.h"
#include "hash.h"
#include "npy.h"
#include "progress.h"
#include "store.h"
#include "strset.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMPORT_CHUNK 64

typedef struct {
    char *text;          /* the whole file; fields point into it */
    int n;               /* data lines */
    char **relpath;      /* (n) */
    char **label;        /* (n) */
    char **split;        /* (n), NULL entries for no split */
    char **sha;          /* (n), NULL until resolved when there is no sha256 column */
    int has_split_col;   /* the index has a split column */
    int has_sha_col;     /* the index has a sha256 column */
    char (*hashbuf)[65]; /* (n) storage for hashes found at import time */
} import_index;

static void import_index_free(import_index *ix) {
    free(ix->text);
    free(ix->relpath);
    free(ix->label);
    free(ix->split);
    free(ix->sha);
    free(ix->hashbuf);
    memset(ix, 0, sizeof *ix);
}

static int import_is_hex64(char *s) {
    size_t n = strlen(s);
    if (n != 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        s[i] = (char)tolower((unsigned char)s[i]);
    }
    return 1;
}

/* Split line at tabs into at most max fields; returns the count (which may
 * exceed max: the extra fields are counted, not stored). */
static int import_fields(char *line, char **out, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *tab = strchr(p, '\t');
        if (tab)
            *tab = '\0';
        if (n < max)
            out[n] = p;
        n++;
        if (!tab)
            return n;
        p = tab + 1;
    }
}

#define IMPORT_MAX_COLS 64

/* The whole file at path as one NUL-terminated text (*out, malloc'ed). */
static int import_slurp(const char *path, char **out, size_t *outlen, bn_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return bn_fail(err, BN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap + 1);
    size_t got;
    while (text && (got = fread(text + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            char *t = realloc(text, 2 * cap + 1);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!text)
        return bn_fail(err, BN_ENOMEM, "%s: out of memory reading the index", path);
    if (bad) {
        free(text);
        return bn_fail(err, BN_EIO, "%s: read error", path);
    }
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        free(text);
        return bn_fail(err, BN_EFORMAT, "%s: binary data, expected tab-separated text", path);
    }
    *out = text;
    *outlen = len;
    return BN_OK;
}

/* Cut text (len bytes) into lines in place (\n or \r\n); *lines malloc'ed. */
static int import_cut_lines(char *text, size_t len, char ***lines, int *nl, const char *path,
                            bn_error *err) {
    int nlines = 0;
    for (size_t i = 0; i < len; i++)
        nlines += text[i] == '\n';
    if (len > 0 && text[len - 1] != '\n')
        nlines++;
    if (nlines < 1)
        return bn_fail(err, BN_EFORMAT, "%s: empty file, expected a header row", path);
    if (!(*lines = malloc((size_t)nlines * sizeof **lines)))
        return bn_fail(err, BN_ENOMEM, "%s: out of memory", path);
    *nl = 0;
    for (char *p = text; *p && *nl < nlines;) {
        char *e = strchr(p, '\n');
        if (e)
            *e = '\0';
        size_t l = strlen(p);
        if (l > 0 && p[l - 1] == '\r')
            p[l - 1] = '\0';
        (*lines)[(*nl)++] = p;
        p = e ? e + 1 : p + l;
    }
    return BN_OK;
}

/* Where the known columns are (-1: absent). */
typedef struct {
    int ncols, rel, label, split, sha, row;
} import_cols;

/* The header row: relpath and label required, each known column once. */
static int import_header(char *line, import_cols *c, const char *path, bn_error *err) {
    char *cols[IMPORT_MAX_COLS];
    *c = (import_cols){import_fields(line, cols, IMPORT_MAX_COLS), -1, -1, -1, -1, -1};
    if (c->ncols > IMPORT_MAX_COLS)
        return bn_fail(err, BN_EFORMAT, "%s: %d columns, at most %d supported", path, c->ncols,
                       IMPORT_MAX_COLS);
    for (int i = 0; i < c->ncols; i++) {
        int *slot = strcmp(cols[i], "relpath") == 0  ? &c->rel
                    : strcmp(cols[i], "label") == 0  ? &c->label
                    : strcmp(cols[i], "split") == 0  ? &c->split
                    : strcmp(cols[i], "sha256") == 0 ? &c->sha
                    : strcmp(cols[i], "row") == 0    ? &c->row
                                                     : NULL;
        if (!slot)
            continue;
        if (*slot >= 0)
            return bn_fail(err, BN_EFORMAT, "%s: column '%s' appears twice in the header", path,
                           cols[i]);
        *slot = i;
    }
    if (c->rel < 0 || c->label < 0) {
        char found[300] = "";
        for (int i = 0; i < c->ncols && strlen(found) < 250; i++)
            snprintf(found + strlen(found), sizeof found - strlen(found), "%s'%.40s'",
                     i ? ", " : "", cols[i]);
        return bn_fail(err, BN_EFORMAT,
                       "%s: the header has no '%s' column (found %s); expected a header row "
                       "with at least relpath and label, tab-separated",
                       path, c->rel < 0 ? "relpath" : "label", found);
    }
    return BN_OK;
}

/* Data line i (row i of the .npy) into ix; seen holds the paths so far. */
static int import_line(import_index *ix, int i, char *line, const import_cols *c, bn_strset *seen,
                       const char *path, bn_error *err) {
    int lineno = i + 2;
    char *f[IMPORT_MAX_COLS];
    int nf = import_fields(line, f, IMPORT_MAX_COLS);
    if (nf != c->ncols)
        return bn_fail(err, BN_EFORMAT, "%s line %d: %d field%s, the header has %d%s", path, lineno,
                       nf, nf == 1 ? "" : "s", c->ncols,
                       nf == 1 && f[0][0] == '\0' ? " (an empty line)" : "");
    if (c->row >= 0) {
        char *end;
        long r = strtol(f[c->row], &end, 10);
        if (!*f[c->row] || *end || r != i)
            return bn_fail(err, BN_EFORMAT,
                           "%s line %d: row is '%s', expected %d (line i must describe row i "
                           "of the .npy)",
                           path, lineno, f[c->row], i);
    }
    char *rel = f[c->rel];
    if (!*rel || rel[0] == '/' || strstr(rel, "\\") || strcmp(rel, "..") == 0 ||
        strncmp(rel, "../", 3) == 0 || strstr(rel, "/../"))
        return bn_fail(err, BN_EFORMAT,
                       "%s line %d: relpath '%s' is not a relative '/'-separated path inside "
                       "the dataset",
                       path, lineno, rel);
    if (!*f[c->label])
        return bn_fail(err, BN_EFORMAT, "%s line %d: empty label", path, lineno);
    if (bn_strset_has(seen, rel))
        return bn_fail(err, BN_EFORMAT, "%s line %d: relpath '%s' appears twice", path, lineno,
                       rel);
    if (bn_strset_put(seen, rel, NULL) != 0)
        return bn_fail(err, BN_ENOMEM, "%s: out of memory", path);
    ix->relpath[i] = rel;
    ix->label[i] = f[c->label];
    ix->split[i] = c->split >= 0 && *f[c->split] ? f[c->split] : NULL;
    if (c->sha >= 0) {
        if (!import_is_hex64(f[c->sha]))
            return bn_fail(err, BN_EFORMAT,
                           "%s line %d: sha256 '%.80s' is not 64 hexadecimal digits", path, lineno,
                           f[c->sha]);
        ix->sha[i] = f[c->sha];
    }
    return BN_OK;
}

/* Step 1 of the file comment: the whole index parsed and checked. */
static int import_read_index(import_index *ix, const char *path, bn_error *err) {
    memset(ix, 0, sizeof *ix);
    size_t len = 0;
    char **lines = NULL;
    int nl = 0;
    import_cols c;
    int rc = import_slurp(path, &ix->text, &len, err);
    if (rc == BN_OK)
        rc = import_cut_lines(ix->text, len, &lines, &nl, path, err);
    if (rc == BN_OK)
        rc = import_header(lines[0], &c, path, err);
    /* Data lines; a final empty line (trailing newline) is not a row. */
    int ndata = nl - 1;
    while (rc == BN_OK && ndata > 0 && lines[ndata][0] == '\0')
        ndata--;
    if (rc == BN_OK) {
        ix->has_split_col = c.split >= 0;
        ix->has_sha_col = c.sha >= 0;
        ix->n = ndata;
        ix->relpath = calloc((size_t)ndata + 1, sizeof *ix->relpath);
        ix->label = calloc((size_t)ndata + 1, sizeof *ix->label);
        ix->split = calloc((size_t)ndata + 1, sizeof *ix->split);
        ix->sha = calloc((size_t)ndata + 1, sizeof *ix->sha);
        if (!ix->relpath || !ix->label || !ix->split || !ix->sha)
            rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", path);
    }
    bn_strset seen;
    bn_strset_init(&seen);
    for (int i = 0; i < ndata && rc == BN_OK; i++)
        rc = import_line(ix, i, lines[i + 1], &c, &seen, path, err);
    bn_strset_free(&seen);
    if (rc == BN_OK && ndata == 0)
        rc = bn_fail(err, BN_EFORMAT, "%s: a header but no rows", path);
    free(lines);
    if (rc)
        import_index_free(ix);
    return rc;
}

/* Give every line its content hash (see the usage text) and check it, its
 * label and split against the image the database may already hold at that
 * path. known[i] is set when the image row exists (and agrees). */
static int import_resolve(import_index *ix, bn_store *store, int64_t dataset, const char *root,
                          const char *index_path, unsigned char *known, bn_error *err) {
    sqlite3 *db = bn_store_db(store);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(
            db, "SELECT sha256, label, split FROM images WHERE dataset = ?2 AND path = ?1", -1, &q,
            NULL) != SQLITE_OK)
        return bn_store_fail(store, err, "looking up images");
    if (!ix->has_sha_col) {
        ix->hashbuf = malloc((size_t)ix->n * sizeof *ix->hashbuf);
        if (!ix->hashbuf) {
            sqlite3_finalize(q);
            return bn_fail(err, BN_ENOMEM, "%s: out of memory", index_path);
        }
    }
    int rc = BN_OK;
    for (int i = 0; i < ix->n && rc == BN_OK; i++) {
        int lineno = i + 2;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, ix->relpath[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, dataset);
        int step = sqlite3_step(q);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            rc = bn_store_fail(store, err, "looking up images");
            break;
        }
        const char *db_sha = step == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
        const char *db_label = step == SQLITE_ROW && sqlite3_column_text(q, 1)
                                   ? (const char *)sqlite3_column_text(q, 1)
                                   : "";
        const char *db_split = step == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 2) : NULL;
        if (!ix->sha[i]) {
            char *h = ix->hashbuf[i];
            if (root) {
                char file[8192];
                snprintf(file, sizeof file, "%s/%s", root, ix->relpath[i]);
                if (bn_hash_sha256_file(file, h) != 0) {
                    rc = bn_fail(err, BN_EIO, "%s line %d: cannot hash %s: %s", index_path, lineno,
                                 file, strerror(errno));
                    break;
                }
            } else if (db_sha) {
                snprintf(h, 65, "%s", db_sha);
            } else {
                rc = bn_fail(err, BN_EINVAL,
                             "%s line %d: no sha256 column, and '%s' is not in %s: pass --root "
                             "DIR (the folder relpath is relative to) so the files can be hashed",
                             index_path, lineno, ix->relpath[i], bn_store_path(store));
                break;
            }
            ix->sha[i] = h;
        }
        known[i] = db_sha != NULL;
        if (!db_sha)
            continue;
        if (strcmp(db_sha, ix->sha[i]) != 0)
            rc = bn_fail(err, BN_EINVAL,
                         "%s line %d: %s is already stored with other content (sha256 %.12s..., "
                         "the index says %.12s...)",
                         index_path, lineno, ix->relpath[i], db_sha, ix->sha[i]);
        else if (strcmp(db_label, ix->label[i]) != 0)
            rc = bn_fail(err, BN_EINVAL,
                         "%s line %d: %s is already stored with label '%s', the index says '%s'",
                         index_path, lineno, ix->relpath[i], db_label, ix->label[i]);
        else if (ix->has_split_col && (db_split ? !ix->split[i] || strcmp(db_split, ix->split[i])
                                                : ix->split[i] != NULL))
            rc = bn_fail(err, BN_EINVAL,
                         "%s line %d: %s is already stored with split '%s', the index says '%s'",
                         index_path, lineno, ix->relpath[i], db_split ? db_split : "",
                         ix->split[i] ? ix->split[i] : "");
    }
    sqlite3_finalize(q);
    return rc;
}

/* Steps 2-4 of the file comment, on a parsed index. */
static int import_store(import_index *ix, bn_npy *npy, bn_store *store, const char *name,
                        const char *model, const char *dtype, const char *root,
                        const char *index_path, int quiet, const char *dataset_name,
                        bn_dataset_info *dsi, int64_t *fs_id, long *new_images, bn_error *err) {
    int dim = (int)npy->dim;
    unsigned char *known = calloc((size_t)ix->n, 1);
    float *chunk = malloc((size_t)IMPORT_CHUNK * (size_t)dim * sizeof *chunk);
    float *other = malloc((size_t)dim * sizeof *other);
    bn_strset first; /* sha256 -> first line with it, to check duplicates agree */
    bn_strset_init(&first);
    sqlite3_stmt *ins = NULL;
    int rc = BN_OK, in_tx = 0;
    if (!known || !chunk || !other) {
        rc = bn_fail(err, BN_ENOMEM, "%s: out of memory for %d x %d floats", npy->path,
                     IMPORT_CHUNK, dim);
        goto done;
    }
    /* One transaction from the dataset's lookup (it may create it) on. */
    if ((rc = bn_store_begin(store, err)))
        goto done;
    in_tx = 1;
    char root_abs[PATH_MAX];
    if ((rc = bn_datasets_for_import(
             store, dataset_name, root && realpath(root, root_abs) ? root_abs : NULL, dsi, err)) ||
        (rc = import_resolve(ix, store, dsi->id, root, index_path, known, err)))
        goto done;
    if (sqlite3_prepare_v2(bn_store_db(store),
                           "INSERT INTO images (path, label, split, sha256, dataset)"
                           " VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = bn_store_fail(store, err, "preparing the image insert");
        goto done;
    }
    bn_featureset fs = {
        .name = name, .source = "import", .model = model, .dim = dim, .dtype = dtype};
    if ((rc = bn_store_featureset_get_or_create(store, &fs, fs_id, err)))
        goto done;
    bn_progress bar;
    bn_progress_start(&bar, stderr, "import", "rows", ix->n, quiet);
    *new_images = 0;
    for (int start = 0; start < ix->n && rc == BN_OK; start += IMPORT_CHUNK) {
        int count = ix->n - start < IMPORT_CHUNK ? ix->n - start : IMPORT_CHUNK;
        if ((rc = bn_npy_read_rows(npy, start, count, chunk, err)))
            break;
        for (int r = 0; r < count && rc == BN_OK; r++) {
            int i = start + r;
            const float *v = chunk + (size_t)r * dim;
            for (int j = 0; j < dim; j++)
                if (!isfinite(v[j])) {
                    rc = bn_fail(err, BN_EFORMAT, "%s: row %d (%s) has %s at column %d", npy->path,
                                 i, ix->relpath[i], isnan(v[j]) ? "NaN" : "Inf", j);
                    break;
                }
            if (rc)
                break;
            /* Same content on two lines: the vectors must agree. */
            const char *prev = bn_strset_get(&first, ix->sha[i]);
            if (prev) {
                int pi = atoi(prev);
                if ((rc = bn_npy_read_rows(npy, pi, 1, other, err)))
                    break;
                if (memcmp(other, v, (size_t)dim * sizeof *v) != 0) {
                    rc = bn_fail(err, BN_EFORMAT,
                                 "%s: rows %d (%s) and %d (%s) have the same sha256 but different "
                                 "vectors",
                                 npy->path, pi, ix->relpath[pi], i, ix->relpath[i]);
                    break;
                }
            } else {
                char num[16];
                snprintf(num, sizeof num, "%d", i);
                if (bn_strset_put(&first, ix->sha[i], num) != 0) {
                    rc = bn_fail(err, BN_ENOMEM, "%s: out of memory", npy->path);
                    break;
                }
            }
            if (!known[i]) {
                sqlite3_reset(ins);
                sqlite3_bind_text(ins, 1, ix->relpath[i], -1, SQLITE_STATIC);
                sqlite3_bind_text(ins, 2, ix->label[i], -1, SQLITE_STATIC);
                if (ix->split[i])
                    sqlite3_bind_text(ins, 3, ix->split[i], -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(ins, 3);
                sqlite3_bind_text(ins, 4, ix->sha[i], -1, SQLITE_STATIC);
                sqlite3_bind_int64(ins, 5, dsi->id);
                if (sqlite3_step(ins) != SQLITE_DONE) {
                    rc = bn_store_fail(store, err, "storing an image");
                    break;
                }
                (*new_images)++;
            }
            rc = bn_store_put_vector(store, *fs_id, ix->sha[i], v, dim, dtype, err);
        }
        bn_progress_update(&bar, start + count);
    }
    bn_progress_finish(&bar);
    if (rc == BN_OK) {
        sqlite3_finalize(ins);
        ins = NULL;
        rc = bn_store_commit(store, err);
        in_tx = 0;
    }
done:
    sqlite3_finalize(ins);
    if (in_tx)
        bn_store_rollback(store);
    bn_strset_free(&first);
    free(known);
    free(chunk);
    free(other);
    return rc;
}

int bn_importer_run(const bn_importer_opts *o, bn_importer_result *r, bn_error *err) {
    double t0 = bn_progress_now();
    memset(r, 0, sizeof *r);
    const char *model = o->model ? o->model : o->name;
    const char *dtype = o->dtype ? o->dtype : "f32";
    if (!o->name || !*o->name || !o->npy || !o->index || !o->db)
        return bn_fail(err, BN_EINVAL,
                       "import: a database, a name, a .npy and an index are needed");
    if (strcmp(dtype, "f32") && strcmp(dtype, "f16"))
        return bn_fail(err, BN_EINVAL, "import: dtype %s: expected f32 or f16", dtype);
    import_index ix;
    bn_npy npy = {0};
    bn_store *store = NULL;
    bn_dataset_info dsi;
    memset(&dsi, 0, sizeof dsi);
    int rc = import_read_index(&ix, o->index, err);
    if (rc == BN_OK && (rc = bn_npy_open(&npy, o->npy, err)) == BN_OK && npy.rows != ix.n)
        rc = bn_fail(err, BN_EFORMAT, "%s has %lld rows, %s describes %d: they must match", o->npy,
                     (long long)npy.rows, o->index, ix.n);
    if (rc == BN_OK && npy.dim > (1 << 24))
        rc = bn_fail(err, BN_EFORMAT, "%s: dim %lld is too large", o->npy, (long long)npy.dim);
    if (rc == BN_OK)
        rc = bn_store_open(&store, o->db, BN_STORE_CREATE, err);
    if (rc == BN_OK)
        rc = import_store(&ix, &npy, store, o->name, model, dtype, o->root, o->index, o->quiet,
                          o->dataset, &dsi, &r->featureset, &r->new_images, err);
    if (rc == BN_OK) {
        r->rows = ix.n;
        r->dim = npy.dim;
        snprintf(r->dataset, sizeof r->dataset, "%s", dsi.name);
    }
    r->seconds = bn_progress_now() - t0;
    bn_store_close(store);
    bn_npy_close(&npy);
    import_index_free(&ix);
    return rc;
}
