/*
 * vec_avg.c: the aggregate and window function vec_avg(vector), the
 * element-wise mean of a group's vectors (docs/SQL.md).
 *
 * Owns: vec_avg's state, step, inverse (for sliding windows), value and
 * final; exports bn_vec_avg_register. Not in sqlite-vec.
 */
#include "vec_internal.h"

#include <string.h>

/* ---------------------------------------------------------------------------
 * vec_avg(vector): aggregate and window function. The element-wise mean of
 * the non-NULL vectors of the group, as float32, summed in double; NULL for a
 * group without vectors (as avg()). All vectors must have one dimension.
 * ------------------------------------------------------------------------- */

typedef struct {
    double *sum; /* n sums, sqlite3_malloc'd */
    int64_t n;   /* dimensions, 0 until the first vector */
    int64_t count;
} vec_avg_state;

static void vec_avg_add(sqlite3_context *ctx, sqlite3_value *val, double sign) {
    if (sqlite3_value_type(val) == SQLITE_NULL)
        return;
    vec_avg_state *st = sqlite3_aggregate_context(ctx, sizeof *st);
    if (!st) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    bn_vec_t v;
    if (bn_vec_arg(ctx, val, "vec_avg: ", &v) != SQLITE_OK)
        return;
    if (!st->sum) {
        st->sum = sqlite3_malloc64((sqlite3_uint64)v.n * sizeof *st->sum);
        if (!st->sum) {
            bn_vec_free(&v);
            sqlite3_result_error_nomem(ctx);
            return;
        }
        memset(st->sum, 0, (size_t)v.n * sizeof *st->sum);
        st->n = v.n;
    } else if (v.n != st->n) {
        char *msg = sqlite3_mprintf("vec_avg: dimension mismatch: a vector has %lld dimensions, "
                                    "while the first one had %lld.",
                                    (long long)v.n, (long long)st->n);
        sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
        sqlite3_free(msg);
        bn_vec_free(&v);
        return;
    }
    for (int64_t i = 0; i < v.n; i++)
        st->sum[i] += sign * v.f[i];
    st->count += sign > 0 ? 1 : -1;
    bn_vec_free(&v);
}

static void fn_vec_avg_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_avg_add(ctx, argv[0], 1.0);
}

static void fn_vec_avg_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_avg_add(ctx, argv[0], -1.0);
}

static void vec_avg_result(sqlite3_context *ctx, vec_avg_state *st) {
    if (!st || st->count <= 0 || !st->sum) {
        sqlite3_result_null(ctx);
        return;
    }
    float *out = sqlite3_malloc64((sqlite3_uint64)st->n * sizeof *out);
    if (!out) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int64_t i = 0; i < st->n; i++)
        out[i] = (float)(st->sum[i] / (double)st->count);
    bn_vec_result(ctx, out, st->n, BN_VEC_F32, 1);
}

static void fn_vec_avg_value(sqlite3_context *ctx) {
    vec_avg_result(ctx, sqlite3_aggregate_context(ctx, 0));
}

static void fn_vec_avg_final(sqlite3_context *ctx) {
    vec_avg_state *st = sqlite3_aggregate_context(ctx, 0);
    vec_avg_result(ctx, st);
    if (st) {
        sqlite3_free(st->sum);
        st->sum = NULL;
    }
}

int bn_vec_avg_register(sqlite3 *db, int flags) {
    return sqlite3_create_window_function(db, "vec_avg", 1, flags, NULL, fn_vec_avg_step,
                                          fn_vec_avg_final, fn_vec_avg_value, fn_vec_avg_inverse,
                                          NULL);
}
