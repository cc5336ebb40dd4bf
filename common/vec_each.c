/*
 * vec_each.c: the table-valued function vec_each(vector), one row per
 * element, as sqlite-vec's (docs/SQL.md).
 *
 * Owns: the eponymous virtual table vec_each; exports bn_vec_each_register.
 */
#include "vec_internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * vec_each(vector): one row per element, as sqlite-vec's: rowid is the
 * 0-based index, value the element (REAL; NaN is NULL). The way to get a
 * number out of a vector, e.g. a stored head's bias:
 * (SELECT value FROM vec_each(h.bias)).
 * ------------------------------------------------------------------------- */

enum { EACH_VALUE, EACH_VECTOR };

typedef struct {
    sqlite3_vtab_cursor base;
    bn_vec_t v;
    int64_t pos;
} each_cursor;

static int each_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err) {
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(value, vector HIDDEN)");
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    *out = vt;
    return SQLITE_OK;
}

static int each_disconnect(sqlite3_vtab *vt) {
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int each_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
    (void)vt;
    info->idxNum = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn != EACH_VECTOR || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
            continue;
        if (!c->usable)
            return SQLITE_CONSTRAINT; /* bind the vector first */
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 1;
        info->idxNum = 1;
        break;
    }
    info->estimatedCost = info->idxNum ? 10 : 1e12;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn < 0 && !info->aOrderBy[0].desc)
        info->orderByConsumed = 1; /* rowid order */
    return SQLITE_OK;
}

static int each_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
    (void)vt;
    each_cursor *cur = sqlite3_malloc(sizeof *cur);
    if (!cur)
        return SQLITE_NOMEM;
    memset(cur, 0, sizeof *cur);
    *out = &cur->base;
    return SQLITE_OK;
}

static int each_close(sqlite3_vtab_cursor *c) {
    each_cursor *cur = (each_cursor *)c;
    bn_vec_free(&cur->v);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int each_filter(sqlite3_vtab_cursor *c, int idx, const char *idx_str, int argc,
                       sqlite3_value **argv) {
    (void)idx_str;
    each_cursor *cur = (each_cursor *)c;
    sqlite3_vtab *vt = c->pVtab;
    bn_vec_free(&cur->v);
    cur->v.n = 0;
    cur->pos = 0;
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = NULL;
    if (!idx || argc < 1) {
        vt->zErrMsg = sqlite3_mprintf("vec_each: needs a vector: SELECT rowid, value FROM "
                                      "vec_each(vector)");
        return SQLITE_ERROR;
    }
    char *err;
    int rc = bn_vec_parse(argv[0], &cur->v, &err);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM || !err)
            return SQLITE_NOMEM;
        vt->zErrMsg = sqlite3_mprintf("vec_each: %s", err);
        sqlite3_free(err);
        cur->v.n = 0;
        return rc;
    }
    /* A borrowed vector points into argv[0], which SQLite may free before
     * the rows are read: keep a copy. */
    if (!cur->v.owned) {
        float *f = sqlite3_malloc64((sqlite3_uint64)cur->v.n * sizeof *f);
        if (!f)
            return SQLITE_NOMEM;
        memcpy(f, cur->v.f, (size_t)cur->v.n * sizeof *f);
        cur->v.f = cur->v.owned = f;
    }
    return SQLITE_OK;
}

static int each_next(sqlite3_vtab_cursor *c) {
    ((each_cursor *)c)->pos++;
    return SQLITE_OK;
}

static int each_eof(sqlite3_vtab_cursor *c) {
    each_cursor *cur = (each_cursor *)c;
    return cur->pos >= cur->v.n;
}

static int each_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
    each_cursor *cur = (each_cursor *)c;
    double x = cur->v.f[cur->pos];
    if (col == EACH_VALUE && !isnan(x))
        sqlite3_result_double(ctx, x);
    else
        sqlite3_result_null(ctx);
    return SQLITE_OK;
}

static int each_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *rowid) {
    *rowid = ((each_cursor *)c)->pos;
    return SQLITE_OK;
}

static sqlite3_module each_module = {
    .iVersion = 0,
    .xCreate = NULL,
    .xConnect = each_connect,
    .xBestIndex = each_best_index,
    .xDisconnect = each_disconnect,
    .xDestroy = each_disconnect,
    .xOpen = each_open,
    .xClose = each_close,
    .xFilter = each_filter,
    .xNext = each_next,
    .xEof = each_eof,
    .xColumn = each_column,
    .xRowid = each_rowid,
};

int bn_vec_each_register(sqlite3 *db) {
    return sqlite3_create_module_v2(db, "vec_each", &each_module, NULL, NULL);
}
