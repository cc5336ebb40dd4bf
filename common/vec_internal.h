/*
 * vec_internal.h: what the vector SQL modules share (not installed, not for
 * users: vec.h is the public header).
 *
 * Owns the vector value every module reads (bn_vec_t: n floats, whatever the
 * SQL value was), the element-type subtypes, the readers and writers of
 * vector values (vec.c), and the distance kernels (vec_kernels.c). The SQL
 * functions are split as SQLite splits its extensions:
 *   vec.c          reading and writing vectors, the scalar functions,
 *                  registration and the loadable extension's entry point;
 *   vec_kernels.c  the distance kernels (double sums; AVX-512 when the CPU
 *                  has it, chosen at run time);
 *   vec_avg.c      the aggregate and window function vec_avg;
 *   vec_each.c     the table-valued function vec_each;
 *   vec_knn.c      the top-k table vec_knn: the only file that knows the
 *                  bottleneck schema.
 *
 * Every file is compiled twice: into the bnvec library (plain sqlite3.h) and,
 * with -DBN_VEC_EXTENSION, into ext/'s loadable bottleneck_vec.so, where every
 * sqlite3_* call goes through the host's API table. vec.c defines that table's
 * pointer (SQLITE_EXTENSION_INIT1); the others declare it (INIT3, here).
 */
#ifndef BN_VEC_INTERNAL_H
#define BN_VEC_INTERNAL_H

#ifdef BN_VEC_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the vec modules read vector BLOBs as native floats: little-endian hosts only"
#endif

/* Flags of newer SQLite versions; older ones ignore unknown bits. */
#ifndef SQLITE_SUBTYPE
#define SQLITE_SUBTYPE 0x000100000
#endif
#ifndef SQLITE_RESULT_SUBTYPE
#define SQLITE_RESULT_SUBTYPE 0x001000000
#endif
#ifndef SQLITE_INNOCUOUS
#define SQLITE_INNOCUOUS 0x000200000
#endif

/* Element types, carried as subtypes. 223..225 are sqlite-vec's. */
enum { BN_VEC_F32 = 223, BN_VEC_BIT = 224, BN_VEC_INT8 = 225, BN_VEC_F16 = 226 };

/* The metrics vec_knn knows; also the scalar functions' kernels. */
enum { BN_VEC_COSINE, BN_VEC_L2, BN_VEC_L1, BN_VEC_DOT };

/* A parsed vector: n floats at f (4-byte aligned), whatever the input was.
 * type is what the input held (BN_VEC_F32 or BN_VEC_F16), so results keep it.
 * owned is freed by bn_vec_free (sqlite3_malloc'd), NULL when f points into
 * the sqlite3_value. */
typedef struct {
    const float *f;
    int64_t n;
    int type;
    float *owned;
} bn_vec_t;

/* --- vec.c: reading and writing vector values --------------------------- */

void bn_vec_free(bn_vec_t *v);
const char *bn_vec_type_name(int type);

/* Decode n little-endian halves at p (any alignment) into floats. */
void bn_vec_f16_decode(const unsigned char *p, float *out, int64_t n);

/* Parse an SQL value as a vector: a BLOB (its subtype says float16;
 * otherwise float32, or as_type when the caller knows better) or JSON text.
 * On error returns non-OK with *err set (sqlite3_malloc'd), or SQLITE_NOMEM. */
int bn_vec_parse_as(sqlite3_value *val, int as_type, bn_vec_t *out, char **err);
int bn_vec_parse(sqlite3_value *val, bn_vec_t *out, char **err);

/* Parse val into v; on failure report it on ctx (with prefix) and return
 * non-OK. */
int bn_vec_arg(sqlite3_context *ctx, sqlite3_value *val, const char *prefix, bn_vec_t *v);

/* Set n floats as the result, encoded and tagged as type. Takes f when
 * owned (sqlite3_malloc'd), copies otherwise. */
void bn_vec_result(sqlite3_context *ctx, const float *f, int64_t n, int type, int owned);

/* --- vec_kernels.c: float inputs, double sums ---------------------------- */

double bn_vec_dot(const float *a, const float *b, int64_t n);
double bn_vec_l2sq(const float *a, const float *b, int64_t n);
double bn_vec_l1(const float *a, const float *b, int64_t n);
/* The same for count vectors at v (n floats each, stride floats apart)
 * against one q: out[i] = bn_vec_dot(q, v + i * stride, n), bit for bit;
 * faster for long vectors (four per read of q: bn_vec_kernels_many_min). */
void bn_vec_dot_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                     double *out);
void bn_vec_l2sq_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                      double *out);
void bn_vec_l1_many(const float *q, const float *v, int64_t stride, int64_t n, int64_t count,
                    double *out);
/* dot(a, b) and |b|^2 in one pass. */
void bn_vec_dot_norm(const float *a, const float *b, int64_t n, double *dot, double *nb);
/* 1 - cos from the dot product and squared norms; NaN when a norm is 0. */
double bn_vec_cosine_from(double dot, double na, double nb);
double bn_vec_cosine(const float *a, const float *b, int64_t n);
/* n little-endian halves as floats, vectorised (NaN payloads may differ from
 * bn_vec_f16_decode's: for distances only). */
void bn_vec_f16_decode_fast(const unsigned char *p, float *out, int64_t n);
/* Which build the kernels run: 1 AVX-512, 0 portable (both give the same
 * bits). set 0 or 1 chooses (1 only if the CPU has it; for tests and
 * benchmarks), -1 asks. */
int bn_vec_kernels_avx512(int set);
/* The *_many kernels take four vectors per read of the query above this
 * many floats (default 4,096), one at a time below. set >= 0 changes it (for
 * tests and benchmarks: 0 takes four at a time at any size), -1 asks. */
int64_t bn_vec_kernels_many_min(int64_t set);

/* --- registration of the other modules (called by bn_vec_register) ------- */

int bn_vec_avg_register(sqlite3 *db, int flags);
int bn_vec_each_register(sqlite3 *db);
int bn_vec_knn_register(sqlite3 *db);

/* Where the last vec_knn query of this thread read the vectors: its
 * connection cache, the packed chunks, or the rows of `vectors` (0: none
 * yet). For tests and benchmarks. */
enum { BN_VEC_KNN_CACHE = 1, BN_VEC_KNN_CHUNKS, BN_VEC_KNN_ROWS };
int bn_vec_knn_last_source(void);

#endif
