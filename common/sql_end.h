/*
 * sql_end.h: ending a transaction or a savepoint for sure.
 *
 * Owns one thing: bn_sql_end, the ROLLBACK, ROLLBACK TO or RELEASE that a
 * function runs on its way out. SQLite prepares even those statements, and
 * a preparation that runs out of memory leaves the transaction open: every
 * later BEGIN on the connection then fails ("cannot start a transaction
 * within a transaction"), and its read lock stays. So out of memory is
 * tried again (a few times: the allocation that failed may succeed the
 * next time); any other error (a transaction SQLite already rolled back)
 * is final. tests/test_oom.c fails every allocation, SQLite's too.
 * Static inline: the SQL extension's library (bnvec) and the store share
 * it without a library of their own. In the extension's files include it
 * after vec_internal.h, so that in the loadable bottleneck_vec.so its
 * sqlite3_exec is sqlite3ext.h's, through the host's API table (the .so
 * has no sqlite3_exec of its own: loading it would fail).
 */
#ifndef BN_SQL_END_H
#define BN_SQL_END_H

#include <sqlite3.h>

static inline int bn_sql_end(sqlite3 *db, const char *sql) {
    int rc = SQLITE_NOMEM;
    for (int i = 0; i < 4 && rc == SQLITE_NOMEM; i++)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc;
}

#endif
