/*
 * datasets.c: naming, finding and creating datasets (see datasets.h).
 */
#include "datasets.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bn_datasets_default_name(const char *root, char *out, size_t n, bn_error *err) {
    char abs[PATH_MAX];
    if (!realpath(root, abs))
        return bn_fail(err, BN_EIO, "%s: %s", root, strerror(errno));
    const char *base = strrchr(abs, '/');
    base = base && base[1] ? base + 1 : "root"; /* "/" has no name of its own */
    snprintf(out, n, "%s", base);
    return BN_OK;
}

static void ds_read_row(sqlite3_stmt *q, bn_dataset_info *out) {
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(q, 0);
    snprintf(out->name, sizeof out->name, "%s", (const char *)sqlite3_column_text(q, 1));
    snprintf(out->kind, sizeof out->kind, "%s", (const char *)sqlite3_column_text(q, 2));
    const unsigned char *root = sqlite3_column_text(q, 3);
    snprintf(out->root, sizeof out->root, "%s", root ? (const char *)root : "");
}

/* One row by a query whose ?1 is text (name) or an id; *found = 0 if none. */
static int ds_query(bn_store *s, const char *sql, const char *text, int64_t id,
                    bn_dataset_info *out, int *found, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "looking up a dataset");
    if (text)
        sqlite3_bind_text(q, 1, text, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    *found = rc == SQLITE_ROW;
    if (*found)
        ds_read_row(q, out);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bn_store_fail(s, err, "looking up a dataset");
    return BN_OK;
}

#define DS_COLUMNS "SELECT id, name, kind, root FROM datasets"

static int ds_by_name(bn_store *s, const char *name, bn_dataset_info *out, int *found,
                      bn_error *err) {
    return ds_query(s, DS_COLUMNS " WHERE name = ?1", name, 0, out, found, err);
}

static int ds_default(bn_store *s, bn_dataset_info *out, int *found, bn_error *err) {
    return ds_query(s, DS_COLUMNS " WHERE kind = ?1 ORDER BY id LIMIT 1", "default", 0, out, found,
                    err);
}

/* "'a' (folder /x/a), 'b' (import)": the datasets, for messages. */
static void ds_list_text(bn_store *s, const char *where, int64_t fs, char *out, size_t n) {
    out[0] = '\0';
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT name, kind, root FROM datasets d WHERE %s ORDER BY name",
             where);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return;
    if (sqlite3_bind_parameter_count(q) > 0)
        sqlite3_bind_int64(q, 1, fs);
    size_t len = 0;
    while (sqlite3_step(q) == SQLITE_ROW && len + 80 < n) {
        const unsigned char *root = sqlite3_column_text(q, 2);
        len += (size_t)snprintf(out + len, n - len, "%s'%s' (%s%s%s)", len ? ", " : "",
                                (const char *)sqlite3_column_text(q, 0),
                                (const char *)sqlite3_column_text(q, 1), root ? " " : "",
                                root ? (const char *)root : "");
    }
    sqlite3_finalize(q);
    if (!len)
        snprintf(out, n, "none");
}

static int ds_exec(bn_store *s, const char *sql, const char *a, const char *b, const char *c,
                   int64_t id, const char *what, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, what);
    const char *v[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (v[i])
            sqlite3_bind_text(q, i + 1, v[i], -1, SQLITE_TRANSIENT);
    if (id)
        sqlite3_bind_int64(q, 4, id);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, what);
}

/* Create dataset name of kind with root (may be NULL), or adopt the
 * 'default' one when adopt is set and it exists. */
static int ds_create(bn_store *s, const char *name, const char *kind, const char *root, int adopt,
                     bn_dataset_info *out, bn_error *err) {
    bn_dataset_info d;
    int found = 0, rc = BN_OK;
    if (adopt && (rc = ds_default(s, &d, &found, err)))
        return rc;
    if (found)
        rc = ds_exec(s,
                     "UPDATE datasets SET name = ?1, kind = ?2, root = ?3, updated_at ="
                     " strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?4",
                     name, kind, root, d.id, "adopting the default dataset", err);
    else
        rc = ds_exec(s, "INSERT INTO datasets (name, kind, root) VALUES (?1, ?2, ?3)", name, kind,
                     root, 0, "creating a dataset", err);
    if (rc)
        return rc;
    if ((rc = ds_by_name(s, name, out, &found, err)))
        return rc;
    return found ? BN_OK
                 : bn_fail(err, BN_EDB, "%s: dataset '%s' vanished", bn_store_path(s), name);
}

/* Of the dataset's stored images, how many there are (*stored) and whether
 * any has a relative path of scan (*shared): one indexed lookup per scanned
 * path until the first hit, so a moved folder answers at once. */
static int ds_overlap(bn_store *s, int64_t id, const bn_dataset *scan, long *stored, int *shared,
                      bn_error *err) {
    sqlite3_stmt *q;
    *stored = 0;
    *shared = 0;
    if (sqlite3_prepare_v2(bn_store_db(s), "SELECT count(*) FROM images WHERE dataset = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "counting the dataset's images");
    sqlite3_bind_int64(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *stored = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return bn_store_fail(s, err, "counting the dataset's images");
    if (*stored == 0)
        return BN_OK;
    if (sqlite3_prepare_v2(bn_store_db(s), "SELECT 1 FROM images WHERE dataset = ?1 AND path = ?2",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "looking up the dataset's images");
    rc = SQLITE_DONE;
    for (size_t i = 0; i < scan->n && !*shared; i++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_text(q, 2, scan->items[i].path, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        *shared = rc == SQLITE_ROW;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            break;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? BN_OK
               : bn_store_fail(s, err, "looking up the dataset's images");
}

static int ds_for_folder(bn_store *s, const char *name, const char *root_abs,
                         const bn_dataset *scan, int keep_missing, bn_dataset_info *out,
                         bn_error *err) {
    char derived[256];
    const char *want = name;
    if (!want) {
        const char *base = strrchr(root_abs, '/');
        snprintf(derived, sizeof derived, "%s", base && base[1] ? base + 1 : "root");
        want = derived;
    }
    int found, rc = ds_by_name(s, want, out, &found, err);
    if (rc)
        return rc;
    if (!found)
        return ds_create(s, want, "folder", root_abs, 1, out, err);
    if (strcmp(out->kind, "files") == 0)
        return bn_fail(err, BN_EINVAL,
                       "%s: dataset '%s' holds the files given to predict; choose another name "
                       "with --dataset NAME",
                       bn_store_path(s), want);
    if (!name && out->root[0] && strcmp(out->root, root_abs) != 0)
        return bn_fail(err, BN_EINVAL,
                       "%s: dataset '%s' was extracted from %s, not from %s: pass --dataset NAME "
                       "to store this folder as another dataset, or --dataset %s if the folder "
                       "moved",
                       bn_store_path(s), want, out->root, root_abs, want);
    if (scan && !keep_missing && strcmp(out->root, root_abs) != 0) {
        long stored;
        int shared;
        if ((rc = ds_overlap(s, out->id, scan, &stored, &shared, err)))
            return rc;
        if (stored > 0 && !shared)
            return bn_fail(err, BN_EINVAL,
                           "%s: dataset '%s' holds %ld images (of %s) and none of them is in %s: "
                           "taking it over would remove them all; pass another --dataset NAME "
                           "for this folder, or --keep-missing to add its images to '%s'",
                           bn_store_path(s), want, stored, out->root[0] ? out->root : "no folder",
                           root_abs, want);
    }
    if (strcmp(out->root, root_abs) != 0 || strcmp(out->kind, "folder") != 0) {
        if ((rc =
                 ds_exec(s,
                         "UPDATE datasets SET kind = ?1, root = ?2, updated_at ="
                         " strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?4",
                         "folder", root_abs, NULL, out->id, "recording the dataset's folder", err)))
            return rc;
        snprintf(out->kind, sizeof out->kind, "folder");
        snprintf(out->root, sizeof out->root, "%s", root_abs);
    }
    return BN_OK;
}

int bn_datasets_for_folder(bn_store *s, const char *name, const char *root_abs,
                           const bn_dataset *scan, int keep_missing, bn_dataset_info *out,
                           bn_error *err) {
    if (name && !name[0])
        return bn_fail(err, BN_EINVAL, "--dataset: the name is empty");
    int rc = bn_store_begin(s, err);
    if (rc)
        return rc;
    rc = ds_for_folder(s, name, root_abs, scan, keep_missing, out, err);
    if (rc) {
        bn_store_rollback(s);
        return rc;
    }
    return bn_store_commit(s, err);
}

int bn_datasets_find(bn_store *s, const char *name, bn_dataset_info *out, bn_error *err) {
    int found, rc = ds_query(s,
                             DS_COLUMNS " WHERE name = ?1 OR CAST(id AS TEXT) = ?1"
                                        " ORDER BY name = ?1 DESC LIMIT 1",
                             name, 0, out, &found, err);
    if (rc || found)
        return rc;
    char list[1024];
    ds_list_text(s, "1", 0, list, sizeof list);
    return bn_fail(err, BN_EINVAL, "%s: no dataset '%s' (datasets: %s)", bn_store_path(s), name,
                   list);
}

int bn_datasets_get(bn_store *s, int64_t id, bn_dataset_info *out, bn_error *err) {
    int found, rc = ds_query(s, DS_COLUMNS " WHERE id = ?1", NULL, id, out, &found, err);
    if (rc || found)
        return rc;
    return bn_fail(err, BN_EINVAL, "%s: no dataset with id %lld", bn_store_path(s), (long long)id);
}

#define DS_WITH_VECTORS                                                                            \
    "d.kind != 'files' AND EXISTS (SELECT 1 FROM images i JOIN vectors v ON v.sha256 = i.sha256"   \
    " AND v.featureset = ?1 WHERE i.dataset = d.id)"

/* The first dataset matching where (?1 = fs) into out, and whether there
 * are none (0), one (1) or more (2) in *count. */
static int ds_only(bn_store *s, const char *where, int64_t fs, bn_dataset_info *out, int *count,
                   bn_error *err) {
    char sql[512];
    snprintf(sql, sizeof sql, DS_COLUMNS " d WHERE %s ORDER BY id LIMIT 2", where);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "looking up datasets");
    if (sqlite3_bind_parameter_count(q) > 0)
        sqlite3_bind_int64(q, 1, fs);
    int rc;
    *count = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if ((*count)++ == 0)
            ds_read_row(q, out);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? BN_OK : bn_store_fail(s, err, "looking up datasets");
}

int bn_datasets_pick(bn_store *s, int64_t fs, bn_dataset_info *out, bn_error *err) {
    int count, rc = ds_only(s, DS_WITH_VECTORS, fs, out, &count, err);
    if (rc)
        return rc;
    if (count == 1)
        return BN_OK;
    char list[1024];
    ds_list_text(s, DS_WITH_VECTORS, fs, list, sizeof list);
    if (count == 0)
        return bn_fail(err, BN_EINVAL, "%s: no dataset has vectors in this feature set",
                       bn_store_path(s));
    return bn_fail(
        err, BN_EINVAL,
        "%s holds several datasets with these vectors (%s): choose one with --dataset NAME",
        bn_store_path(s), list);
}

int bn_datasets_for_import(bn_store *s, const char *name, const char *root_abs,
                           bn_dataset_info *out, bn_error *err) {
    int found, rc;
    if (name) {
        if (!name[0])
            return bn_fail(err, BN_EINVAL, "--dataset: the name is empty");
        if ((rc = ds_by_name(s, name, out, &found, err)))
            return rc;
        return found ? BN_OK : ds_create(s, name, "import", root_abs, 0, out, err);
    }
    int count;
    if ((rc = ds_only(s, "kind != 'files'", 0, out, &count, err)))
        return rc;
    if (count == 1)
        return BN_OK;
    char list[1024];
    ds_list_text(s, "kind != 'files'", 0, list, sizeof list);
    if (count == 0) /* every database starts with 'default': only if it was renamed away */
        return ds_create(s, "default", "default", NULL, 0, out, err);
    return bn_fail(err, BN_EINVAL,
                   "%s holds several datasets (%s): choose the one the index describes with "
                   "--dataset NAME",
                   bn_store_path(s), list);
}

int bn_datasets_files(bn_store *s, bn_dataset_info *out, bn_error *err) {
    int found, rc = ds_by_name(s, BN_DATASETS_FILES_NAME, out, &found, err);
    if (rc)
        return rc;
    if (found && strcmp(out->kind, "files") != 0)
        return bn_fail(err, BN_EINVAL,
                       "%s: dataset '%s' is a folder's, but predict keeps the files it is given "
                       "under that name: rename it (UPDATE datasets SET name = ...)",
                       bn_store_path(s), BN_DATASETS_FILES_NAME);
    if (found)
        return BN_OK;
    return ds_create(s, BN_DATASETS_FILES_NAME, "files", NULL, 0, out, err);
}
