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

/* Register every function and module on db. Returns an SQLite result code. */
int bn_vec_register(sqlite3 *db);

#endif
