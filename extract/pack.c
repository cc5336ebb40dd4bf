/*
 * pack.c: vec_knn's packed copy kept fresh after a run (pack.h).
 */
#include "pack.h"

#include "vec.h"

#include <stdio.h>

void extract_pack_store(bn_store *store, const char *prog, int quiet) {
    int64_t packed = 0;
    char *msg = NULL;
    if (bn_vec_knn_pack_stale(bn_store_db(store), &packed, &msg) != SQLITE_OK)
        fprintf(stderr, "%s: warning: %s: %s (vec_knn reads the rows instead)\n", prog,
                bn_store_path(store), msg ? msg : "packing for vec_knn failed");
    else if (packed > 0 && !quiet)
        fprintf(stderr, "%s: %lld vectors packed for vec_knn\n", bn_store_path(store),
                (long long)packed);
    sqlite3_free(msg);
}

void extract_pack_path(const char *db, const char *prog, int quiet) {
    bn_store *store;
    bn_error err;
    bn_error_clear(&err);
    if (bn_store_open(&store, db, 0, &err)) {
        fprintf(stderr, "%s: warning: %s (vec_knn reads the rows instead)\n", prog, err.msg);
        return;
    }
    extract_pack_store(store, prog, quiet);
    bn_store_close(store);
}
