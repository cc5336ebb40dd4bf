/*
 * vec.h: SQL functions over vector BLOBs, compatible with sqlite-vec's names,
 * argument order, results and errors (vec_f32, vec_length, vec_to_json,
 * vec_distance_l2, vec_distance_l1, vec_distance_cosine, vec_normalize,
 * vec_slice, vec_add, vec_sub), plus half-precision BLOBs, vec_dot, the
 * aggregate vec_avg and a top-k nearest-neighbour table-valued function.
 *
 * Registered on every connection the programs open (store.c), and exported
 * as a loadable extension by ext/ for anyone's sqlite3 shell.
 */
#ifndef BN_VEC_H
#define BN_VEC_H

#include <sqlite3.h>
#include <stdint.h>

/* Register every function and module on db. Returns an SQLite result code. */
int bn_vec_register(sqlite3 *db);

/* Write feature set `featureset` (its name, or its id as text) into the
 * contiguous chunks vec_knn reads fastest (table vector_chunks, schema 7),
 * replacing the ones there: all or nothing, in a savepoint. Any later write
 * to the feature set's vectors drops them again (triggers), so call it after
 * a run that wrote vectors. *packed (if not NULL) is the number of vectors
 * packed. Returns an SQLite result code; on error *errmsg (if not NULL) is a
 * one-line message naming the problem, to free with sqlite3_free. The same
 * as SQL: SELECT vec_knn_pack('googlenet'). */
int bn_vec_knn_pack(sqlite3 *db, const char *featureset, int64_t *packed, char **errmsg);

/* Pack every feature set that has vectors and no chunks (the triggers dropped
 * them, or it was never packed): what the programs call after a run that may
 * have written vectors, so that a run that wrote nothing costs one query.
 * *packed (if not NULL) counts the vectors packed. The same errors as
 * bn_vec_knn_pack; a database without vector_chunks is left alone. */
int bn_vec_knn_pack_stale(sqlite3 *db, int64_t *packed, char **errmsg);

/* Turn SQLite's memory map on for a read of many pages, if db has it off
 * (the default): overflow pages are then copied from the map instead of read
 * by one pread() each (vec_knn: 41 MB of chunks in 7 ms instead of 25;
 * loading a feature set for training: featureset.c). SQLite caps the map at
 * its compile-time SQLITE_MAX_MMAP_SIZE (2 GB in Debian's build); beyond,
 * pages are read as before. Returns what to hand to bn_vec_mmap_restore, or
 * -1 when nothing was changed. Call the restore only once the statements and
 * blob handles of the read, which may hold mapped pages, are finalized. */
sqlite3_int64 bn_vec_mmap_on(sqlite3 *db);
void bn_vec_mmap_restore(sqlite3 *db, sqlite3_int64 was);

#endif
