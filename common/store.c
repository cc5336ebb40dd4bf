/*
 * store.c: the SQLite database (see store.h).
 *
 * Owns: opening (create / read-only), the schema migrations embedded from
 * the schema/ SQL files at build time, connection settings (WAL, busy timeout,
 * foreign keys), the vector SQL functions on every connection, and the few
 * writes extract needs. All SQL uses bound parameters; the only formatted
 * statement is PRAGMA user_version, whose value is an integer we own.
 */
#include "store.h"

#include "f16.h"
#include "sql_end.h"
#include "vec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Generated from schema/ by tools/embed.c. */
extern const char *const bn_schema_migrations[];
extern const int bn_schema_version;

enum {
    ST_HAS_VECTOR,
    ST_IMAGE_SHA,
    ST_PUT_IMAGE,
    ST_CLEAR_FAILURE,
    ST_CLEAR_IMAGE,
    ST_PUT_VECTOR,
    ST_PUT_FAILURE,
    ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
    [ST_HAS_VECTOR] = "SELECT 1 FROM vectors WHERE featureset = ?1 AND sha256 = ?2",
    [ST_IMAGE_SHA] = "SELECT sha256 FROM images WHERE dataset = ?2 AND path = ?1",
    [ST_PUT_IMAGE] =
        "INSERT INTO images (path, label, split, sha256, width, height, bytes, dataset)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        " ON CONFLICT (dataset, path) DO UPDATE SET label = excluded.label,"
        " split = excluded.split, sha256 = excluded.sha256,"
        " width = excluded.width, height = excluded.height, bytes = excluded.bytes",
    [ST_CLEAR_FAILURE] = "DELETE FROM failures WHERE dataset = ?2 AND path = ?1",
    [ST_CLEAR_IMAGE] = "DELETE FROM images WHERE dataset = ?2 AND path = ?1",
    [ST_PUT_VECTOR] = "INSERT OR REPLACE INTO vectors (featureset, sha256, vector, engine,"
                      " engine_version) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_PUT_FAILURE] = "INSERT INTO failures (path, sha256, reason, dataset)"
                       " VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (dataset, path) DO UPDATE SET sha256 = excluded.sha256,"
                       " reason = excluded.reason, at = excluded.at",
};

struct bn_store {
    sqlite3 *db;
    char *path;
    int readonly;
    sqlite3_stmt *st[ST_COUNT];
    void *scratch; /* f16 conversion buffer */
    size_t scratch_size;
    char engine[32]; /* recorded with each vector (bn_store_set_engine); "" = NULL */
    int engine_version;
};

/* errno saying why the database file or its folder (which must hold the
 * -wal and -shm files) cannot be written, or 0. */
static int store_unwritable(const char *path) {
    if (access(path, W_OK) != 0 && errno != ENOENT)
        return errno;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
    return access(dir, W_OK) != 0 ? errno : 0;
}

int bn_store_fail(bn_store *s, bn_error *err, const char *what) {
    const char *msg = s && s->db ? sqlite3_errmsg(s->db) : "out of memory";
    int ext = s && s->db ? sqlite3_extended_errcode(s->db) : SQLITE_NOMEM;
    const char *hint = "";
    switch (ext & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        hint = " (another process is writing this database; try again when it is done)";
        break;
    case SQLITE_READONLY: hint = " (the database or its folder is read-only)"; break;
    case SQLITE_FULL: hint = " (the disk is full)"; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: hint = " (the file is damaged or not a bottleneck database)"; break;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
        /* SQLite's text ("unable to open database file", "disk I/O error")
         * does not say why; the system's error does ("Read-only file
         * system", "File too large", ...). */
        int e = s ? store_unwritable(s->path) : 0;
        if (e == 0 && s && s->db)
            e = sqlite3_system_errno(s->db);
        if (e != 0)
            return bn_fail(err, BN_EDB, "%s: %s: %s (%s%s)", s ? s->path : "database", what, msg,
                           strerror(e),
                           e == EROFS || e == EACCES || e == EPERM
                               ? ": the database or its folder is read-only"
                               : "");
        if ((ext & 0xff) == SQLITE_IOERR) /* SQLite keeps no errno for failed writes */
            hint = " (a write failed: the disk is full, or a quota or file size limit is reached)";
        break;
    }
    default: break;
    }
    return bn_fail(err, BN_EDB, "%s: %s: %s%s", s ? s->path : "database", what, msg, hint);
}

static sqlite3_stmt *stmt(bn_store *s, int which, bn_error *err) {
    if (!s->st[which]) {
        if (sqlite3_prepare_v3(s->db, statement_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                               &s->st[which], NULL) != SQLITE_OK) {
            bn_store_fail(s, err, "preparing a statement");
            return NULL;
        }
    }
    sqlite3_reset(s->st[which]);
    sqlite3_clear_bindings(s->st[which]);
    return s->st[which];
}

static int exec(bn_store *s, const char *sql, const char *what, bn_error *err) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, what);
    return BN_OK;
}

/* The journal mode of "main" into mode[8] ("wal", "delete", ...). */
static int journal_mode(bn_store *s, const char *sql, char mode[8]) {
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(q, 0);
        snprintf(mode, 8, "%s", m ? m : "");
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    return rc;
}

/* Switch the file to WAL (a property of the file: once any process did it,
 * there is nothing left to do). The switch needs the file to itself, and
 * SQLite does not run the busy handler for it: two processes opening a new
 * database at once (two extracts, an extract and the sqlite3 shell) see
 * SQLITE_BUSY at once. So retry, within the same 30 s a locked batch
 * commit would wait, and accept that another process made the switch. */
static int set_wal(bn_store *s, bn_error *err) {
    char mode[8] = "";
    for (int waited_ms = 0;; waited_ms += 20) {
        int rc = journal_mode(s, "PRAGMA journal_mode", mode);
        if (rc == SQLITE_OK && strcmp(mode, "wal") == 0)
            return BN_OK;
        if (rc == SQLITE_OK)
            rc = journal_mode(s, "PRAGMA journal_mode = WAL", mode);
        if (rc == SQLITE_OK) /* WAL, or a file system without it keeps its journal */
            return BN_OK;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
            return bn_store_fail(s, err, "setting WAL mode");
        if (waited_ms >= 30000)
            return bn_store_fail(s, err, "setting WAL mode");
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static int read_version(bn_store *s, int *version, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the schema version");
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(q);
        return bn_store_fail(s, err, "reading the schema version");
    }
    *version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return BN_OK;
}

/* The name of a table or view of a database whose schema version is 0 (none
 * of ours) into name, or "" when it has none (a new or empty file). */
static int foreign_table(bn_store *s, char *name, size_t n, bn_error *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND "
                           "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 1",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the schema");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        snprintf(name, n, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? BN_OK
                                                 : bn_store_fail(s, err, "reading the schema");
}

/* Bring the schema up to date in one IMMEDIATE transaction, so two processes
 * opening a new database at once cannot both apply migration 1. Runs with
 * foreign keys off (the caller turns them on afterwards): a migration that
 * rebuilds a table (003: images) drops the old one, which with foreign keys
 * on would first delete every row that points at it (predictions). */
static int migrate(bn_store *s, bn_error *err) {
    int version;
    if (read_version(s, &version, err))
        return err ? err->code : BN_EDB;
    if (version > bn_schema_version)
        return bn_fail(err, BN_EDB,
                       "%s: schema version %d is newer than this build of bottleneck knows (%d);"
                       " upgrade bottleneck",
                       s->path, version, bn_schema_version);
    if (version == bn_schema_version || s->readonly)
        return BN_OK;
    if (exec(s, "BEGIN IMMEDIATE", "starting the schema migration", err))
        return BN_EDB;
    if (read_version(s, &version, err))
        goto fail;
    for (int v = version; v < bn_schema_version; v++) {
        if (sqlite3_exec(s->db, bn_schema_migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            char what[64];
            snprintf(what, sizeof what, "applying schema migration %d", v + 1);
            bn_store_fail(s, err, what);
            goto fail;
        }
    }
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", bn_schema_version);
    if (exec(s, pragma, "recording the schema version", err) ||
        exec(s, "COMMIT", "committing the schema migration", err))
        goto fail;
    return BN_OK;
fail:
    bn_sql_end(s->db, "ROLLBACK");
    return BN_EDB;
}

int bn_store_open(bn_store **out, const char *path, int flags, bn_error *err) {
    *out = NULL;
    bn_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return bn_fail(err, BN_ENOMEM, "%s: out of memory", path);
    }
    s->readonly = (flags & BN_STORE_READONLY) != 0;

    struct stat st;
    int exists = stat(path, &st) == 0;
    if (!exists && (s->readonly || !(flags & BN_STORE_CREATE))) {
        free(s->path);
        free(s);
        return bn_fail(err, BN_EIO, "%s: no such database", path);
    }
    if (exists && S_ISDIR(st.st_mode)) {
        free(s->path);
        free(s);
        return bn_fail(err, BN_EIO, "%s: is a directory, not a database file", path);
    }
    /* An empty file (touch, a failed copy) is a database nobody wrote yet:
     * opened to write, it is initialised like a new one; read-only, there
     * is nothing in it to read. */
    if (exists && st.st_size == 0 && s->readonly) {
        free(s->path);
        free(s);
        return bn_fail(err, BN_EIO,
                       "%s: an empty file, not a bottleneck database yet (bottleneck-extract "
                       "--db %s DATASET_DIR initialises it)",
                       path, path);
    }

    int oflags = s->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(path, &s->db, oflags, NULL) != SQLITE_OK) {
        bn_store_fail(s, err, "cannot open");
        bn_store_close(s);
        return BN_EDB;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* Another extract or a reader may hold the lock briefly (a batch commit,
     * a checkpoint): wait for it rather than fail. */
    sqlite3_busy_timeout(s->db, 30000);

    /* The version and the tables from one snapshot (a read transaction):
     * read apart, another process's first migration could commit between
     * them, and its new tables would be taken for another program's. */
    int version;
    if (exec(s, "BEGIN", "starting to read the schema", err)) {
        bn_store_close(s);
        return BN_EDB;
    }
    if (read_version(s, &version, err)) { /* "file is not a database" shows here */
        bn_store_close(s);
        return BN_EDB;
    }
    /* Schema version 0 with tables in it: another program's database (a
     * mistyped --db). Nothing may change in it, not even its journal mode. */
    char foreign[256] = "";
    if ((version == 0 && foreign_table(s, foreign, sizeof foreign, err)) ||
        exec(s, "COMMIT", "reading the schema", err)) {
        bn_store_close(s);
        return BN_EDB;
    }
    if (foreign[0]) {
        bn_store_close(s);
        return bn_fail(err, BN_EDB,
                       "%s: a SQLite database of something else (it has a table '%s' and no "
                       "bottleneck schema): left as it is; bottleneck makes its tables only in a "
                       "new or empty database",
                       path, foreign);
    }
    if (!s->readonly) {
        /* WAL: readers never block the writer and a killed writer loses only
         * its open transaction. NORMAL sync is durable across process kills. */
        if (set_wal(s, err) ||
            exec(s, "PRAGMA synchronous = NORMAL", "setting synchronous mode", err)) {
            bn_store_close(s);
            return BN_EDB;
        }
    }
    if (exec(s, "PRAGMA foreign_keys = OFF", "disabling foreign keys", err) || migrate(s, err) ||
        exec(s, "PRAGMA foreign_keys = ON", "enabling foreign keys", err)) {
        bn_store_close(s);
        return err ? err->code : BN_EDB;
    }
    if (read_version(s, &version, err)) {
        bn_store_close(s);
        return BN_EDB;
    }
    if (version == 0 && s->readonly) {
        bn_store_close(s);
        return bn_fail(err, BN_EDB,
                       "%s: a SQLite database without bottleneck's tables (schema version 0): "
                       "not made by bottleneck-extract",
                       path);
    }
    if (version != bn_schema_version) {
        bn_store_close(s);
        return bn_fail(err, BN_EDB,
                       "%s: schema version %d, this build needs %d (open it once read-write to "
                       "upgrade)",
                       path, version, bn_schema_version);
    }
    if (bn_vec_register(s->db) != SQLITE_OK) {
        bn_store_fail(s, err, "registering vector functions");
        bn_store_close(s);
        return BN_EDB;
    }
    *out = s;
    return BN_OK;
}

int bn_store_check_output(const bn_store *s, const char *out, const char *what, bn_error *err) {
    struct stat o;
    if (stat(out, &o) != 0) /* not there yet: not the database */
        return BN_OK;
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        char path[4200];
        struct stat d;
        snprintf(path, sizeof path, "%s%s", s->path, suffix[i]);
        if (stat(path, &d) == 0 && d.st_dev == o.st_dev && d.st_ino == o.st_ino)
            return bn_fail(err, BN_EINVAL,
                           "%s %s: is the database %s%s itself; choose another file", what, out,
                           s->path, suffix[i]);
    }
    return BN_OK;
}

void bn_store_close(bn_store *s) {
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db && !s->readonly && sqlite3_db_readonly(s->db, "main") == 0) {
        /* Move the WAL into the database and empty it now, then close
         * without SQLite's own last-connection checkpoint: that one holds
         * an exclusive lock on the file while it works, and a sqlite3 shell
         * opening the database in that instant fails with "database is
         * locked". The empty -wal and -shm files stay; SQLite reuses them.
         * Waits at most a second for readers of the WAL (then they keep it). */
        sqlite3_busy_timeout(s->db, 1000);
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    }
    sqlite3_close(s->db);
    free(s->scratch);
    free(s->path);
    free(s);
}

sqlite3 *bn_store_db(bn_store *s) {
    return s->db;
}

const char *bn_store_path(const bn_store *s) {
    return s->path;
}

int bn_store_version(bn_store *s) {
    int v = -1;
    read_version(s, &v, NULL);
    return v;
}

int bn_store_latest_version(void) {
    return bn_schema_version;
}

int bn_store_begin(bn_store *s, bn_error *err) {
    return exec(s, "BEGIN IMMEDIATE", "starting a transaction", err);
}

int bn_store_commit(bn_store *s, bn_error *err) {
    if (exec(s, "COMMIT", "committing", err)) {
        bn_store_rollback(s);
        return BN_EDB;
    }
    return BN_OK;
}

void bn_store_rollback(bn_store *s) {
    if (!sqlite3_get_autocommit(s->db))
        bn_sql_end(s->db, "ROLLBACK");
}

/* Bind text or NULL. */
static void bind_text(sqlite3_stmt *q, int i, const char *v) {
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(q, i);
}

/* The precision a feature set is keyed by: NULL is fp32. */
static const char *fs_precision(const bn_featureset *fs) {
    return fs->precision ? fs->precision : "fp32";
}

/* fp32 sets keep the names they always had; others end in the precision. */
static void derive_name(char *out, size_t n, const bn_featureset *fs) {
    if (fs->name) {
        snprintf(out, n, "%s", fs->name);
        return;
    }
    int fp32 = strcmp(fs_precision(fs), "fp32") == 0;
    snprintf(out, n, "%s/%s/%s/%d/%s/%s/%s%s%s", fs->model, fs->layer ? fs->layer : "-",
             fs->pooling ? fs->pooling : "-", fs->size, fs->resize ? fs->resize : "-",
             fs->preprocess ? fs->preprocess : "-", fs->dtype, fp32 ? "" : "/",
             fp32 ? "" : fs_precision(fs));
}

int bn_store_featureset_get_or_create(bn_store *s, const bn_featureset *fs, int64_t *id,
                                      bn_error *err) {
    sqlite3_stmt *q = NULL;
    const char *source = fs->source ? fs->source : "extract";
    /* IS compares NULLs as equal: imports have no layer, pooling, ... */
    const char *find = "SELECT id, dim, name FROM featuresets WHERE source = ?1 AND model = ?2"
                       " AND weights_sha256 IS ?3 AND layer IS ?4 AND pooling IS ?5"
                       " AND size IS ?6 AND resize IS ?7 AND preprocess IS ?8 AND dtype = ?9"
                       " AND (?10 IS NULL OR name = ?10) AND precision = ?11";
    if (sqlite3_prepare_v2(s->db, find, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "looking up the feature set");
    bind_text(q, 1, source);
    bind_text(q, 2, fs->model);
    bind_text(q, 3, fs->weights_sha256);
    bind_text(q, 4, fs->layer);
    bind_text(q, 5, fs->pooling);
    if (fs->size > 0)
        sqlite3_bind_int(q, 6, fs->size);
    bind_text(q, 7, fs->resize);
    bind_text(q, 8, fs->preprocess);
    bind_text(q, 9, fs->dtype);
    bind_text(q, 10, fs->name);
    bind_text(q, 11, fs_precision(fs));
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        int dim = sqlite3_column_int(q, 1);
        if (dim != fs->dim) {
            /* vectors of another length cannot join it: name it as users do */
            rc = bn_fail(err, BN_EDB, "%s: feature set '%s' (id %lld) has dim %d, expected %d",
                         s->path, (const char *)sqlite3_column_text(q, 2), (long long)*id, dim,
                         fs->dim);
            sqlite3_finalize(q);
            return rc;
        }
        sqlite3_finalize(q);
        return BN_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(s, err, "looking up the feature set");

    /* New: name it; if the readable name is taken (same settings, other
     * weights), tell them apart by the weights' hash. */
    char name[512];
    derive_name(name, sizeof name, fs);
    const char *ins = "INSERT INTO featuresets (name, source, model, weights_sha256, layer,"
                      " pooling, size, resize, preprocess, dim, dtype, model_format, model_path,"
                      " precision)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sqlite3_prepare_v2(s->db, ins, -1, &q, NULL) != SQLITE_OK)
            return bn_store_fail(s, err, "creating the feature set");
        bind_text(q, 1, name);
        bind_text(q, 2, source);
        bind_text(q, 3, fs->model);
        bind_text(q, 4, fs->weights_sha256);
        bind_text(q, 5, fs->layer);
        bind_text(q, 6, fs->pooling);
        if (fs->size > 0)
            sqlite3_bind_int(q, 7, fs->size);
        bind_text(q, 8, fs->resize);
        bind_text(q, 9, fs->preprocess);
        sqlite3_bind_int(q, 10, fs->dim);
        bind_text(q, 11, fs->dtype);
        bind_text(q, 12, fs->model_format);
        bind_text(q, 13, fs->model_path);
        bind_text(q, 14, fs_precision(fs));
        rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(s->db);
            return BN_OK;
        }
        if ((rc & 0xff) != SQLITE_CONSTRAINT || fs->name || attempt == 1)
            break;
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, "@%.8s",
                 fs->weights_sha256 ? fs->weights_sha256 : "other");
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT && fs->name)
        return bn_fail(err, BN_EINVAL, "%s: a feature set named '%s' already exists", s->path,
                       fs->name);
    return bn_store_fail(s, err, "creating the feature set");
}

/* Column i as a new string (NULL for NULL); *oom set when the copy fails. */
static const char *column_dup(sqlite3_stmt *q, int i, int *oom) {
    const unsigned char *t = sqlite3_column_text(q, i);
    char *d = t ? strdup((const char *)t) : NULL;
    *oom |= t && !d;
    return d;
}

int bn_store_featureset_get(bn_store *s, int64_t id, bn_featureset *out, bn_error *err) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q;
    /* The columns of bn_featureset_get_or_create's INSERT, in its order. */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT name, source, model, weights_sha256, layer, pooling, size,"
                           " resize, preprocess, dim, dtype, model_format, model_path, precision"
                           " FROM featuresets WHERE id = ?1",
                           -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "reading the feature set");
    sqlite3_bind_int64(q, 1, id);
    int step = sqlite3_step(q), oom = 0;
    if (step == SQLITE_ROW) {
        out->name = column_dup(q, 0, &oom);
        out->source = column_dup(q, 1, &oom);
        out->model = column_dup(q, 2, &oom);
        out->weights_sha256 = column_dup(q, 3, &oom);
        out->layer = column_dup(q, 4, &oom);
        out->pooling = column_dup(q, 5, &oom);
        out->size = sqlite3_column_int(q, 6);
        out->resize = column_dup(q, 7, &oom);
        out->preprocess = column_dup(q, 8, &oom);
        out->dim = sqlite3_column_int(q, 9);
        out->dtype = column_dup(q, 10, &oom);
        out->model_format = column_dup(q, 11, &oom);
        out->model_path = column_dup(q, 12, &oom);
        out->precision = column_dup(q, 13, &oom);
    }
    sqlite3_finalize(q);
    if (step == SQLITE_ROW && !oom)
        return BN_OK;
    bn_store_featureset_release(out);
    if (oom)
        return bn_fail(err, BN_ENOMEM, "%s: out of memory reading feature set %lld", s->path,
                       (long long)id);
    if (step != SQLITE_DONE)
        return bn_store_fail(s, err, "reading the feature set");
    return bn_fail(err, BN_EINVAL, "%s: no feature set %lld", s->path, (long long)id);
}

void bn_store_featureset_release(bn_featureset *fs) {
    const char **strings[] = {&fs->name,  &fs->source,       &fs->model,      &fs->weights_sha256,
                              &fs->layer, &fs->pooling,      &fs->resize,     &fs->preprocess,
                              &fs->dtype, &fs->model_format, &fs->model_path, &fs->precision};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        free((void *)*strings[i]);
    memset(fs, 0, sizeof *fs);
}

int bn_store_featureset_find(bn_store *s, const char *name_or_id, int64_t *id, int *dim,
                             char dtype[8], bn_error *err) {
    sqlite3_stmt *q;
    const char *sql = "SELECT id, dim, dtype FROM featuresets WHERE name = ?1"
                      " OR CAST(id AS TEXT) = ?1 ORDER BY name = ?1 DESC LIMIT 1";
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "looking up the feature set");
    sqlite3_bind_text(q, 1, name_or_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(q, 0);
        if (dim)
            *dim = sqlite3_column_int(q, 1);
        if (dtype)
            snprintf(dtype, 8, "%s", (const char *)sqlite3_column_text(q, 2));
        sqlite3_finalize(q);
        return BN_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(s, err, "looking up the feature set");
    return bn_fail(
        err, BN_EINVAL,
        "%s: no feature set '%s' (list them with: sqlite3 %s 'SELECT id, name FROM featuresets')",
        s->path, name_or_id, s->path);
}

int bn_store_featureset_pick(bn_store *s, const char *name_or_id, int64_t *id, int *dim, char *name,
                             size_t nname, bn_error *err) {
    sqlite3 *db = s->db;
    sqlite3_stmt *q;
    if (name_or_id) {
        char dtype[8];
        int rc = bn_store_featureset_find(s, name_or_id, id, dim, dtype, err);
        if (rc)
            return rc;
    } else {
        if (sqlite3_prepare_v2(db, "SELECT id, dim, name FROM featuresets ORDER BY id", -1, &q,
                               NULL) != SQLITE_OK)
            return bn_store_fail(s, err, "listing feature sets");
        int count = 0;
        char names[600] = "";
        while (sqlite3_step(q) == SQLITE_ROW) {
            if (count++ == 0) {
                *id = sqlite3_column_int64(q, 0);
                *dim = sqlite3_column_int(q, 1);
            }
            size_t len = strlen(names);
            if (len < 500)
                snprintf(names + len, sizeof names - len, "%s'%s'", len ? ", " : "",
                         (const char *)sqlite3_column_text(q, 2));
        }
        sqlite3_finalize(q);
        if (count == 0)
            return bn_fail(err, BN_EINVAL,
                           "%s has no feature sets: run bottleneck-extract or bottleneck-extract "
                           "import first",
                           s->path);
        if (count > 1)
            return bn_fail(err, BN_EINVAL,
                           "%s has %d feature sets (%s): choose one with --features", s->path,
                           count, names);
    }
    bn_featureset row;
    int rc = bn_store_featureset_get(s, *id, &row, err);
    if (rc == BN_OK)
        snprintf(name, nname, "%s", row.name);
    bn_store_featureset_release(&row);
    return rc;
}

int bn_store_has_vector(bn_store *s, int64_t featureset, const char *sha256, int *has,
                        bn_error *err) {
    sqlite3_stmt *q = stmt(s, ST_HAS_VECTOR, err);
    if (!q)
        return BN_EDB;
    sqlite3_bind_int64(q, 1, featureset);
    sqlite3_bind_text(q, 2, sha256, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *has = rc == SQLITE_ROW;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bn_store_fail(s, err, "looking up a vector");
    return BN_OK;
}

int bn_store_image_sha256(bn_store *s, int64_t dataset, const char *path, char sha256[65], int *has,
                          bn_error *err) {
    sqlite3_stmt *q = stmt(s, ST_IMAGE_SHA, err);
    if (!q)
        return BN_EDB;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, dataset);
    int rc = sqlite3_step(q);
    *has = rc == SQLITE_ROW;
    if (*has)
        snprintf(sha256, 65, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return bn_store_fail(s, err, "looking up an image");
    return BN_OK;
}

static int step_done(bn_store *s, sqlite3_stmt *q, const char *what, bn_error *err) {
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return bn_store_fail(s, err, what);
    return BN_OK;
}

/* Runs statement st, whose parameters are (path, dataset): the clearing
 * statements that follow a file's new state. */
static int step_path(bn_store *s, int st, int64_t dataset, const char *path, const char *what,
                     bn_error *err) {
    sqlite3_stmt *q = stmt(s, st, err);
    if (!q)
        return BN_EDB;
    bind_text(q, 1, path);
    sqlite3_bind_int64(q, 2, dataset);
    return step_done(s, q, what, err);
}

int bn_store_put_image(bn_store *s, int64_t dataset, const char *path, const char *label,
                       const char *split, const char *sha256, int width, int height, int64_t bytes,
                       bn_error *err) {
    sqlite3_stmt *q = stmt(s, ST_PUT_IMAGE, err);
    if (!q)
        return BN_EDB;
    bind_text(q, 1, path);
    bind_text(q, 2, label);
    bind_text(q, 3, split);
    bind_text(q, 4, sha256);
    sqlite3_bind_int(q, 5, width);
    sqlite3_bind_int(q, 6, height);
    sqlite3_bind_int64(q, 7, bytes);
    sqlite3_bind_int64(q, 8, dataset);
    if (step_done(s, q, "storing an image", err))
        return BN_EDB;
    return step_path(s, ST_CLEAR_FAILURE, dataset, path, "clearing a failure", err);
}

int bn_store_put_vector(bn_store *s, int64_t featureset, const char *sha256, const float *v,
                        int dim, const char *dtype, bn_error *err) {
    const void *blob = v;
    size_t bytes = (size_t)dim * sizeof(float);
    if (strcmp(dtype, "f16") == 0) {
        bytes = (size_t)dim * sizeof(uint16_t);
        if (s->scratch_size < bytes) {
            void *p = realloc(s->scratch, bytes);
            if (!p)
                return bn_fail(err, BN_ENOMEM, "%s: out of memory", s->path);
            s->scratch = p;
            s->scratch_size = bytes;
        }
        bn_f32_to_f16_array(v, s->scratch, (size_t)dim);
        blob = s->scratch;
    } else if (strcmp(dtype, "f32") != 0) {
        return bn_fail(err, BN_EINVAL, "%s: unknown dtype '%s'", s->path, dtype);
    }
    /* The BLOB is little-endian by definition; this build assumes a
     * little-endian host (checked at compile time below). */
    sqlite3_stmt *q = stmt(s, ST_PUT_VECTOR, err);
    if (!q)
        return BN_EDB;
    sqlite3_bind_int64(q, 1, featureset);
    sqlite3_bind_text(q, 2, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(q, 3, blob, bytes, SQLITE_STATIC);
    bind_text(q, 4, s->engine[0] ? s->engine : NULL);
    if (s->engine[0])
        sqlite3_bind_int(q, 5, s->engine_version);
    else
        sqlite3_bind_null(q, 5);
    return step_done(s, q, "storing a vector", err);
}

void bn_store_set_engine(bn_store *s, const char *engine, int version) {
    snprintf(s->engine, sizeof s->engine, "%s", engine ? engine : "");
    s->engine_version = version;
}

int bn_store_unverified(bn_store *s, long *count, bn_error *err) {
    sqlite3_stmt *q = NULL;
    *count = 0;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT count(*) FROM vectors v JOIN featuresets f ON f.id = v.featureset"
            " WHERE f.source = 'extract' AND v.engine IS NULL",
            -1, &q, NULL) != SQLITE_OK)
        return bn_store_fail(s, err, "counting vectors of unknown provenance");
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *count = (long)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? BN_OK
                            : bn_store_fail(s, err, "counting vectors of unknown provenance");
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "vector BLOBs assume little-endian");

int bn_store_put_failure(bn_store *s, int64_t dataset, const char *path, const char *sha256,
                         const char *reason, bn_error *err) {
    sqlite3_stmt *q = stmt(s, ST_PUT_FAILURE, err);
    if (!q)
        return BN_EDB;
    bind_text(q, 1, path);
    bind_text(q, 2, sha256);
    bind_text(q, 3, reason);
    sqlite3_bind_int64(q, 4, dataset);
    if (step_done(s, q, "recording a failure", err))
        return BN_EDB;
    /* The file is no longer the image stored under its path (it broke, or
     * was replaced by something unreadable): the database describes the
     * folder as it is. The old content's vectors stay (keyed by content). */
    return step_path(s, ST_CLEAR_IMAGE, dataset, path, "clearing the image row of a failed file",
                     err);
}
