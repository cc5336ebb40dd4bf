/*
 * pack.h: after a subcommand that may have written vectors (extract, import,
 * merge), pack the feature sets whose packed copy is stale, so that vec_knn
 * reads them fastest (common/vec.h, docs/SQL.md "Packing").
 *
 * The vectors are stored whatever happens here: a failure prints one warning
 * line and leaves vec_knn reading the rows; it never fails the run.
 */
#ifndef EXTRACT_PACK_H
#define EXTRACT_PACK_H

#include "store.h"

void extract_pack_store(bn_store *store, const char *prog, int quiet);
/* The same for a database the caller has closed (import). */
void extract_pack_path(const char *db, const char *prog, int quiet);

#endif
