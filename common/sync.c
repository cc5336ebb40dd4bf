/*
 * sync.c: a dataset's rows follow its folder (see sync.h).
 *
 * Everything happens in SQL on the connection's TEMP schema: sync_before
 * (the rows before the run), sync_scan (the paths found now) and sync_new
 * (rows whose path is new), so the work is a few indexed statements whatever
 * the dataset's size, and the pairing of gone and new paths by content is
 * one indexed lookup per gone path.
 */
#include "sync.h"

#include <stdio.h>
#include <string.h>

static int sync_exec(bn_store *s, const char *sql, int64_t dataset, const char *what,
                     bn_error *err) {
    sqlite3_stmt *q;
    const char *tail = sql;
    while (tail && *tail) {
        if (sqlite3_prepare_v2(bn_store_db(s), tail, -1, &q, &tail) != SQLITE_OK)
            return bn_store_fail(s, err, what);
        if (!q)
            break;
        if (sqlite3_bind_parameter_count(q) > 0)
            sqlite3_bind_int64(q, 1, dataset);
        int rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            return bn_store_fail(s, err, what);
    }
    return BN_OK;
}

static long sync_count(bn_store *s, const char *sql, int64_t dataset) {
    sqlite3_stmt *q;
    long n = 0;
    if (sqlite3_prepare_v2(bn_store_db(s), sql, -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_bind_parameter_count(q) > 0)
            sqlite3_bind_int64(q, 1, dataset);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = (long)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
    }
    return n;
}

int bn_sync_begin(bn_store *s, int64_t dataset, bn_error *err) {
    return sync_exec(s,
                     "DROP TABLE IF EXISTS temp.sync_before;"
                     "CREATE TEMP TABLE sync_before (id INTEGER PRIMARY KEY, path TEXT UNIQUE,"
                     " sha256 TEXT, label TEXT, split TEXT);"
                     "INSERT INTO temp.sync_before SELECT id, path, sha256, label, split"
                     " FROM main.images WHERE dataset = ?1;",
                     dataset, "taking a snapshot of the dataset", err);
}

static int same_text(const unsigned char *a, const unsigned char *b) {
    return (!a && !b) || (a && b && strcmp((const char *)a, (const char *)b) == 0);
}

/* Pair each gone path with a new path of the same content; drop the gone
 * rows. Counts into st. */
static int sync_pair(bn_store *s, int64_t dataset, bn_sync_stats *st, bn_error *err) {
    sqlite3 *db = bn_store_db(s);
    sqlite3_stmt *gone = NULL, *find = NULL, *mark = NULL, *pred = NULL, *hold = NULL, *del = NULL;
    int rc = BN_OK;
    if (sqlite3_prepare_v2(db,
                           "SELECT b.id, b.sha256, b.label, b.split FROM temp.sync_before b"
                           " WHERE b.path NOT IN (SELECT path FROM temp.sync_scan)"
                           " AND b.id IN (SELECT id FROM main.images WHERE dataset = ?1)"
                           " ORDER BY b.path",
                           -1, &gone, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT id, label, split FROM temp.sync_new WHERE sha256 = ?1"
                           " AND NOT paired ORDER BY id LIMIT 1",
                           -1, &find, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE temp.sync_new SET paired = 1 WHERE id = ?1", -1, &mark,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE OR IGNORE predictions SET image = ?2 WHERE image = ?1", -1,
                           &pred, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE OR IGNORE holdouts SET image = ?2 WHERE image = ?1", -1,
                           &hold, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "DELETE FROM images WHERE id = ?1", -1, &del, NULL) != SQLITE_OK) {
        rc = bn_store_fail(s, err, "preparing the dataset's update");
        goto done;
    }
    sqlite3_bind_int64(gone, 1, dataset);
    int step;
    while (rc == BN_OK && (step = sqlite3_step(gone)) == SQLITE_ROW) {
        int64_t old = sqlite3_column_int64(gone, 0);
        sqlite3_reset(find);
        sqlite3_bind_value(find, 1, sqlite3_column_value(gone, 1));
        int f = sqlite3_step(find);
        if (f == SQLITE_ROW) {
            int64_t new_id = sqlite3_column_int64(find, 0);
            int same = same_text(sqlite3_column_text(find, 1), sqlite3_column_text(gone, 2)) &&
                       same_text(sqlite3_column_text(find, 2), sqlite3_column_text(gone, 3));
            *(same ? &st->moved : &st->relabelled) += 1;
            sqlite3_reset(find);
            sqlite3_stmt *moves[3] = {mark, pred, hold};
            for (int k = 0; k < 3 && rc == BN_OK; k++) {
                sqlite3_reset(moves[k]);
                sqlite3_bind_int64(moves[k], 1, k == 0 ? new_id : old);
                if (k > 0)
                    sqlite3_bind_int64(moves[k], 2, new_id);
                if (sqlite3_step(moves[k]) != SQLITE_DONE)
                    rc = bn_store_fail(s, err, "moving an image's records");
            }
        } else if (f == SQLITE_DONE) {
            st->removed++;
        } else {
            rc = bn_store_fail(s, err, "pairing moved images");
        }
        sqlite3_reset(find);
        if (rc == BN_OK) {
            sqlite3_reset(del);
            sqlite3_bind_int64(del, 1, old);
            if (sqlite3_step(del) != SQLITE_DONE)
                rc = bn_store_fail(s, err, "removing an image that is gone");
        }
    }
    if (rc == BN_OK && step != SQLITE_DONE)
        rc = bn_store_fail(s, err, "reading the dataset's snapshot");
done:
    sqlite3_finalize(gone);
    sqlite3_finalize(find);
    sqlite3_finalize(mark);
    sqlite3_finalize(pred);
    sqlite3_finalize(hold);
    sqlite3_finalize(del);
    return rc;
}

int bn_sync_finish(bn_store *s, int64_t dataset, const bn_dataset *ds, int keep_missing,
                   bn_sync_stats *st, bn_error *err) {
    memset(st, 0, sizeof *st);
    int rc = bn_store_begin(s, err);
    if (rc)
        return rc;
    rc = sync_exec(s,
                   "DROP TABLE IF EXISTS temp.sync_scan;"
                   "CREATE TEMP TABLE sync_scan (path TEXT PRIMARY KEY) WITHOUT ROWID;",
                   dataset, "recording the folder's files", err);
    sqlite3_stmt *ins = NULL;
    if (rc == BN_OK &&
        sqlite3_prepare_v2(bn_store_db(s), "INSERT OR IGNORE INTO temp.sync_scan VALUES (?1)", -1,
                           &ins, NULL) != SQLITE_OK)
        rc = bn_store_fail(s, err, "recording the folder's files");
    for (size_t i = 0; rc == BN_OK && i < ds->n; i++) {
        sqlite3_reset(ins);
        sqlite3_bind_text(ins, 1, ds->items[i].path, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = bn_store_fail(s, err, "recording the folder's files");
    }
    sqlite3_finalize(ins);
    if (rc == BN_OK)
        rc = sync_exec(s,
                       "DROP TABLE IF EXISTS temp.sync_new;"
                       "CREATE TEMP TABLE sync_new AS SELECT id, sha256, label, split, 0 AS paired"
                       " FROM main.images WHERE dataset = ?1"
                       " AND path NOT IN (SELECT path FROM temp.sync_before);"
                       "CREATE INDEX temp.sync_new_sha256 ON sync_new(sha256);",
                       dataset, "finding the new images", err);
    if (rc == BN_OK) {
        st->changed = sync_count(s,
                                 "SELECT count(*) FROM main.images i JOIN temp.sync_before b"
                                 " ON b.id = i.id WHERE i.dataset = ?1 AND i.sha256 != b.sha256",
                                 dataset);
        if (keep_missing) {
            st->missing = sync_count(s,
                                     "SELECT count(*) FROM temp.sync_before b WHERE b.path NOT IN"
                                     " (SELECT path FROM temp.sync_scan) AND b.id IN"
                                     " (SELECT id FROM main.images WHERE dataset = ?1)",
                                     dataset);
        } else {
            rc = sync_pair(s, dataset, st, err);
            if (rc == BN_OK)
                rc = sync_exec(s,
                               "DELETE FROM main.failures WHERE dataset = ?1"
                               " AND path NOT IN (SELECT path FROM temp.sync_scan)",
                               dataset, "removing the failures of files that are gone", err);
        }
        st->added = sync_count(s, "SELECT count(*) FROM temp.sync_new WHERE NOT paired", dataset);
    }
    if (rc == BN_OK)
        rc = sync_exec(s,
                       "UPDATE datasets SET updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
                       " WHERE id = ?1",
                       dataset, "recording the dataset's update", err);
    if (rc) {
        bn_store_rollback(s);
        return rc;
    }
    rc = bn_store_commit(s, err);
    sync_exec(s,
              "DROP TABLE IF EXISTS temp.sync_before; DROP TABLE IF EXISTS temp.sync_scan;"
              "DROP TABLE IF EXISTS temp.sync_new;",
              dataset, "dropping the snapshot", NULL);
    return rc;
}
