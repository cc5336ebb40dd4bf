/*
 * vec.c: SQL functions over vector BLOBs (see vec.h and docs/SQL.md).
 *
 * Owns: the sqlite-vec compatible scalar functions (vec_f32, vec_length,
 * vec_type, vec_to_json, vec_distance_l2/_l1/_cosine, vec_normalize,
 * vec_slice, vec_add, vec_sub, and the table vec_each), what sqlite-vec lacks
 * (vec_f16, vec_dot, the aggregate and window function vec_avg) and the
 * eponymous virtual table vec_knn, a top-k nearest-neighbour scan over one
 * feature set of a bottleneck database.
 *
 * A vector is a headerless little-endian BLOB of float32 (4 bytes an element)
 * or of IEEE half floats (2 bytes), or JSON text '[1, 2.5, ...]'. A BLOB's
 * length alone cannot say which element type it holds, so, as in sqlite-vec,
 * the type travels as the value's SQLite subtype: 223 is float32 (sqlite-vec's
 * number), 226 is float16 (ours). An untagged BLOB is float32, except in
 * vec_f16(), which tags it, and in vec_f32(blob, dtype), which converts by the
 * dtype given (the embeddings view's dtype column). vec_knn knows the feature
 * set's dtype and dimension, so it reads the stored BLOBs, and the query, by
 * length.
 *
 * Error texts are sqlite-vec 0.1.9's word for word (misspellings included:
 * programs match on them). Sums are accumulated in double.
 *
 * Compiled twice: into the bnvec library (plain sqlite3.h, bn_vec_register
 * called by store.c on each connection) and, with -DBN_VEC_EXTENSION, into
 * ext/'s loadable bottleneck_vec.so, where every sqlite3_* call goes through
 * the host's API table (sqlite3ext.h).
 */
#ifdef BN_VEC_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#else
#include <sqlite3.h>
#endif

#include "f16.h"
#include "vec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vec.c reads vector BLOBs as native floats: little-endian hosts only"
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
enum { VEC_F32 = 223, VEC_BIT = 224, VEC_INT8 = 225, VEC_F16 = 226 };

/* The JSON subtype SQLite's json1 gives its text results. */
#define JSON_SUBTYPE 74

/* ---------------------------------------------------------------------------
 * Reading vectors
 * ------------------------------------------------------------------------- */

/* A parsed vector: n floats at f (4-byte aligned), whatever the input was.
 * type is what the input held (VEC_F32 or VEC_F16), so results keep it.
 * owned is freed by vec_free (sqlite3_malloc'd), NULL when f points into the
 * sqlite3_value. */
typedef struct {
    const float *f;
    int64_t n;
    int type;
    float *owned;
} vec_t;

static void vec_free(vec_t *v) {
    sqlite3_free(v->owned);
    v->owned = NULL;
    v->f = NULL;
}

static const char *vec_type_name(int type) {
    return type == VEC_F16 ? "float16" : "float32";
}

static int json_isspace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Length of the JSON number (RFC 8259 grammar) at s[0..len), 0 if none. */
static int64_t json_number_len(const char *s, int64_t len) {
    int64_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len)
        return 0;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i;
}

/* Parse a JSON array of numbers into floats. Strict JSON: sqlite-vec also
 * accepts a missing ']', missing commas, hex and 'nan' (see docs/SQL.md); we
 * report those with its generic "JSON parsing error". Numbers beyond double
 * range are errors (as in sqlite-vec); beyond float range become +-Inf. The
 * text is NUL-terminated (sqlite3_value_text), so strtod cannot overrun. */
static int vec_parse_json(const char *s, int64_t len, vec_t *out, char **err) {
    if (len == 0) {
        *err = sqlite3_mprintf("zero-length vectors are not supported.");
        return SQLITE_ERROR;
    }
    int64_t i = 0;
    while (i < len && json_isspace(s[i]))
        i++;
    if (i >= len || s[i] != '[') {
        *err = sqlite3_mprintf("JSON array parsing error: Input does not start with '['");
        return SQLITE_ERROR;
    }
    i++;
    int64_t n = 0, cap = 0;
    float *f = NULL;
    while (i < len && json_isspace(s[i]))
        i++;
    int closed = 0;
    if (i < len && s[i] == ']') {
        i++;
        closed = 1;
    }
    while (!closed) {
        int64_t tok = json_number_len(s + i, len - i);
        if (tok == 0)
            goto bad;
        char *end;
        errno = 0;
        double d = strtod(s + i, &end);
        if (end != s + i + tok || (errno == ERANGE && (d == 0 || isinf(d))))
            goto bad;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            float *g = sqlite3_realloc64(f, (sqlite3_uint64)cap * sizeof *f);
            if (!g) {
                sqlite3_free(f);
                return SQLITE_NOMEM;
            }
            f = g;
        }
        f[n++] = (float)d;
        i += tok;
        while (i < len && json_isspace(s[i]))
            i++;
        if (i < len && s[i] == ',') {
            i++;
            while (i < len && json_isspace(s[i]))
                i++;
        } else if (i < len && s[i] == ']') {
            i++;
            closed = 1;
        } else {
            goto bad;
        }
    }
    while (i < len && json_isspace(s[i]))
        i++;
    if (i != len)
        goto bad;
    if (n == 0) {
        sqlite3_free(f);
        *err = sqlite3_mprintf("zero-length vectors are not supported.");
        return SQLITE_ERROR;
    }
    out->f = out->owned = f;
    out->n = n;
    out->type = VEC_F32;
    return SQLITE_OK;
bad:
    sqlite3_free(f);
    *err = sqlite3_mprintf("JSON parsing error");
    return SQLITE_ERROR;
}

/* Decode n little-endian halves at p (any alignment) into floats. */
static void vec_f16_decode(const unsigned char *p, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = bn_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

/* Read bytes of BLOB as elements of type (VEC_F32 or VEC_F16) into out.
 * float32 data is used in place when 4-byte aligned, copied otherwise. */
static int vec_from_blob(const void *blob, int64_t bytes, int type, vec_t *out, char **err) {
    if (bytes == 0) {
        *err = sqlite3_mprintf("zero-length vectors are not supported.");
        return SQLITE_ERROR;
    }
    if (!blob)
        return SQLITE_NOMEM;
    if (type == VEC_F16) {
        if (bytes % 2) {
            *err = sqlite3_mprintf(
                "invalid float16 vector BLOB length. Must be divisible by 2, found %lld",
                (long long)bytes);
            return SQLITE_ERROR;
        }
        int64_t n = bytes / 2;
        float *f = sqlite3_malloc64((sqlite3_uint64)n * sizeof *f);
        if (!f)
            return SQLITE_NOMEM;
        vec_f16_decode(blob, f, n);
        out->f = out->owned = f;
        out->n = n;
        out->type = VEC_F16;
        return SQLITE_OK;
    }
    if (bytes % 4) {
        *err = sqlite3_mprintf(
            "invalid float32 vector BLOB length. Must be divisible by 4, found %lld",
            (long long)bytes);
        return SQLITE_ERROR;
    }
    out->n = bytes / 4;
    out->type = VEC_F32;
    out->owned = NULL;
    if (((uintptr_t)blob & 3) == 0) {
        out->f = blob;
    } else {
        float *f = sqlite3_malloc64((sqlite3_uint64)bytes);
        if (!f)
            return SQLITE_NOMEM;
        memcpy(f, blob, (size_t)bytes);
        out->f = out->owned = f;
    }
    return SQLITE_OK;
}

/* Parse an SQL value as a vector: a BLOB (its subtype says float16;
 * otherwise float32, or as_type when the caller knows better) or JSON text.
 * On error returns non-OK with *err set (sqlite3_malloc'd), or SQLITE_NOMEM. */
static int vec_parse_as(sqlite3_value *val, int as_type, vec_t *out, char **err) {
    memset(out, 0, sizeof *out);
    *err = NULL;
    switch (sqlite3_value_type(val)) {
    case SQLITE_BLOB: {
        int sub = (int)sqlite3_value_subtype(val);
        if (sub == VEC_INT8 || sub == VEC_BIT) {
            *err = sqlite3_mprintf("%s vectors are not supported: bottleneck's vec functions "
                                   "take float32 and float16 vectors",
                                   sub == VEC_INT8 ? "int8" : "bit");
            return SQLITE_ERROR;
        }
        int type = sub == VEC_F16 || sub == VEC_F32 ? sub : as_type;
        return vec_from_blob(sqlite3_value_blob(val), sqlite3_value_bytes(val), type, out, err);
    }
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_value_text(val);
        if (!s)
            return SQLITE_NOMEM;
        return vec_parse_json(s, sqlite3_value_bytes(val), out, err);
    }
    default: {
        static const char *names[] = {"", "INTEGER", "FLOAT", "TEXT", "BLOB", "NULL"};
        *err =
            sqlite3_mprintf("Input must have type BLOB (compact format) or TEXT (JSON), found %s",
                            names[sqlite3_value_type(val)]);
        return SQLITE_ERROR;
    }
    }
}

static int vec_parse(sqlite3_value *val, vec_t *out, char **err) {
    return vec_parse_as(val, VEC_F32, out, err);
}

/* Report a parse failure on ctx, with an optional prefix ("Error reading 1st
 * vector: "), and free the message. */
static void vec_result_parse_error(sqlite3_context *ctx, int rc, const char *prefix, char *err) {
    if (rc == SQLITE_NOMEM || !err) {
        sqlite3_free(err);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    char *msg = sqlite3_mprintf("%s%s", prefix ? prefix : "", err);
    sqlite3_free(err);
    if (!msg) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_error(ctx, msg, -1);
    sqlite3_free(msg);
}

/* Parse val into v; on failure report it and return non-OK. */
static int vec_arg(sqlite3_context *ctx, sqlite3_value *val, const char *prefix, vec_t *v) {
    char *err;
    int rc = vec_parse(val, v, &err);
    if (rc != SQLITE_OK)
        vec_result_parse_error(ctx, rc, prefix, err);
    return rc;
}

static void vec_aux_free(void *p) {
    vec_t *v = p;
    vec_free(v);
    sqlite3_free(v);
}

/* Argument i as a vector, reusing the one parsed on an earlier row when the
 * argument is a constant (a bound query vector in ORDER BY
 * vec_distance_cosine(vector, ?)): JSON is then parsed once per statement,
 * not once per row. Release with vec_keep. */
static int vec_arg_i(sqlite3_context *ctx, sqlite3_value **argv, int i, const char *prefix,
                     vec_t *v) {
    const vec_t *c = sqlite3_get_auxdata(ctx, i);
    if (c) {
        *v = *c;
        v->owned = NULL;
        return SQLITE_OK;
    }
    return vec_arg(ctx, argv[i], prefix, v);
}

/* Done with argument i: hand a buffer it owns to SQLite's auxiliary data
 * (kept while the argument is constant, freed at once otherwise). Call
 * after the last use of v: the destructor may run immediately. */
static void vec_keep(sqlite3_context *ctx, int i, vec_t *v) {
    if (v->owned) {
        vec_t *c = sqlite3_malloc(sizeof *c);
        if (c) {
            *c = *v;
            v->owned = NULL;
            v->f = NULL;
            sqlite3_set_auxdata(ctx, i, c, vec_aux_free);
            return;
        }
    }
    vec_free(v);
}

/* Parse the two vectors of a binary function, checking dimensions agree.
 * float16 and float32 may be mixed (both are read as floats). */
static int vec_arg_pair(sqlite3_context *ctx, sqlite3_value **argv, vec_t *a, vec_t *b) {
    if (vec_arg_i(ctx, argv, 0, "Error reading 1st vector: ", a) != SQLITE_OK)
        return SQLITE_ERROR;
    if (vec_arg_i(ctx, argv, 1, "Error reading 2nd vector: ", b) != SQLITE_OK) {
        vec_free(a);
        return SQLITE_ERROR;
    }
    if (a->n != b->n) {
        char *msg = sqlite3_mprintf("Vector dimension mistmatch. First vector has %lld "
                                    "dimensions, while the second has %lld dimensions.",
                                    (long long)a->n, (long long)b->n);
        if (msg)
            sqlite3_result_error(ctx, msg, -1);
        else
            sqlite3_result_error_nomem(ctx);
        sqlite3_free(msg);
        vec_free(a);
        vec_free(b);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* ---------------------------------------------------------------------------
 * Writing vectors
 * ------------------------------------------------------------------------- */

/* Set n floats as the result, encoded and tagged as type. Takes f when
 * owned (sqlite3_malloc'd), copies otherwise. */
static void vec_result(sqlite3_context *ctx, const float *f, int64_t n, int type, int owned) {
    if (type == VEC_F16) {
        unsigned char *h = sqlite3_malloc64((sqlite3_uint64)n * 2);
        if (!h) {
            if (owned)
                sqlite3_free((void *)f);
            sqlite3_result_error_nomem(ctx);
            return;
        }
        for (int64_t i = 0; i < n; i++) {
            uint16_t x = bn_f32_to_f16(f[i]);
            h[2 * i] = (unsigned char)(x & 0xff);
            h[2 * i + 1] = (unsigned char)(x >> 8);
        }
        if (owned)
            sqlite3_free((void *)f);
        sqlite3_result_blob64(ctx, h, (sqlite3_uint64)n * 2, sqlite3_free);
    } else if (owned) {
        sqlite3_result_blob64(ctx, f, (sqlite3_uint64)n * 4, sqlite3_free);
    } else {
        sqlite3_result_blob64(ctx, f, (sqlite3_uint64)n * 4, SQLITE_TRANSIENT);
    }
    sqlite3_result_subtype(ctx, (unsigned)type);
}

/* Result of v, handing over its buffer if it owns one. */
static void vec_result_vec(sqlite3_context *ctx, vec_t *v, int type) {
    int owned = v->owned != NULL;
    vec_result(ctx, v->f, v->n, type, owned);
    v->owned = NULL;
    v->f = NULL;
}

/* ---------------------------------------------------------------------------
 * Kernels: float inputs, double accumulation, four independent sums so the
 * loop is not one long dependency chain. Products of two floats are exact in
 * double, so only the order of the additions differs from a plain loop.
 * ------------------------------------------------------------------------- */

static double vk_dot(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)a[i] * b[i];
        s1 += (double)a[i + 1] * b[i + 1];
        s2 += (double)a[i + 2] * b[i + 2];
        s3 += (double)a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += (double)a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static double vk_l2sq(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = (double)a[i] - b[i], d1 = (double)a[i + 1] - b[i + 1];
        double d2 = (double)a[i + 2] - b[i + 2], d3 = (double)a[i + 3] - b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        double d = (double)a[i] - b[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

static double vk_l1(const float *a, const float *b, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += fabs((double)a[i] - b[i]);
        s1 += fabs((double)a[i + 1] - b[i + 1]);
        s2 += fabs((double)a[i + 2] - b[i + 2]);
        s3 += fabs((double)a[i + 3] - b[i + 3]);
    }
    for (; i < n; i++)
        s0 += fabs((double)a[i] - b[i]);
    return (s0 + s1) + (s2 + s3);
}

/* dot(a, b) and |b|^2 in one pass, for cosine against a fixed query. Four
 * lanes of each, as above (the compiler turns them into vector registers). */
static void vk_dot_norm(const float *a, const float *b, int64_t n, double *dot, double *nb) {
    double d[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            double x = a[i + j], y = b[i + j];
            d[j] += x * y;
            q[j] += y * y;
        }
    for (; i < n; i++) {
        double x = a[i], y = b[i];
        d[0] += x * y;
        q[0] += y * y;
    }
    *dot = (d[0] + d[1]) + (d[2] + d[3]);
    *nb = (q[0] + q[1]) + (q[2] + q[3]);
}

/* 1 - cos from the dot product and squared norms. Undefined (NaN) when
 * either vector is zero, as in sqlite-vec, whose SQL result is then NULL.
 * Clamped to [0, 2] so rounding never gives a distance of -2e-16. */
static double vk_cosine_from(double dot, double na, double nb) {
    if (na == 0 || nb == 0)
        return NAN;
    double d = 1.0 - dot / sqrt(na * nb);
    if (d < 0)
        d = 0;
    if (d > 2)
        d = 2;
    return d;
}

/* Cosine distance in one pass over both vectors. */
static double vk_cosine(const float *a, const float *b, int64_t n) {
    double d[4] = {0, 0, 0, 0}, p[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) {
            double x = a[i + j], y = b[i + j];
            d[j] += x * y;
            p[j] += x * x;
            q[j] += y * y;
        }
    for (; i < n; i++) {
        double x = a[i], y = b[i];
        d[0] += x * y;
        p[0] += x * x;
        q[0] += y * y;
    }
    return vk_cosine_from((d[0] + d[1]) + (d[2] + d[3]), (p[0] + p[1]) + (p[2] + p[3]),
                          (q[0] + q[1]) + (q[2] + q[3]));
}

/* The metrics vec_knn knows; also the scalar functions' kernels. */
enum { METRIC_COSINE, METRIC_L2, METRIC_L1, METRIC_DOT };

/* ---------------------------------------------------------------------------
 * Scalar functions
 * ------------------------------------------------------------------------- */

/* vec_f32(vector): a float32 BLOB (subtype 223) from a BLOB or JSON text.
 * A float16-tagged input (vec_f16(...)) is converted.
 * vec_f16(vector): a float16 BLOB (subtype 226). JSON text and float32-tagged
 * BLOBs are converted (round to nearest even; beyond +-65504 becomes Inf); an
 * untagged BLOB is taken as float16 data and tagged, as sqlite-vec's
 * vec_int8(blob) tags.
 * vec_f32 / vec_f16(blob, dtype): read an untagged BLOB as dtype 'f32' or
 * 'f16' (the embeddings view's dtype column) and return the function's type.
 * The result type (VEC_F32 or VEC_F16) is the function's user data. */
static void fn_vec_convert(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    int to = *(const int *)sqlite3_user_data(ctx), as = to;
    if (argc == 2) {
        const char *dt = (const char *)sqlite3_value_text(argv[1]);
        if (dt && (strcmp(dt, "f32") == 0 || strcmp(dt, "float32") == 0)) {
            as = VEC_F32;
        } else if (dt && (strcmp(dt, "f16") == 0 || strcmp(dt, "float16") == 0)) {
            as = VEC_F16;
        } else {
            char *msg = sqlite3_mprintf("%s: unknown dtype '%s': expected 'f32' or 'f16'",
                                        to == VEC_F16 ? "vec_f16" : "vec_f32", dt ? dt : "NULL");
            sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
            sqlite3_free(msg);
            return;
        }
    }
    vec_t v;
    char *err;
    int rc = vec_parse_as(argv[0], as, &v, &err);
    if (rc != SQLITE_OK) {
        vec_result_parse_error(ctx, rc, NULL, err);
        return;
    }
    vec_result_vec(ctx, &v, to);
}

/* vec_length(vector): number of elements. */
static void fn_vec_length(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t v;
    if (vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    sqlite3_result_int64(ctx, v.n);
    vec_free(&v);
}

/* vec_type(vector): 'float32' or 'float16'. */
static void fn_vec_type(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t v;
    if (vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    sqlite3_result_text(ctx, vec_type_name(v.type), -1, SQLITE_STATIC);
    vec_free(&v);
}

/* vec_to_json(vector): '[1.000000,2.500000]', each element as printf's %f
 * (SQLite's printf, as sqlite-vec), NaN as null. JSON subtype. */
static void fn_vec_to_json(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t v;
    if (vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    sqlite3_str *s = sqlite3_str_new(sqlite3_context_db_handle(ctx));
    sqlite3_str_appendchar(s, 1, '[');
    for (int64_t i = 0; i < v.n; i++) {
        if (i)
            sqlite3_str_appendchar(s, 1, ',');
        if (isnan(v.f[i]))
            sqlite3_str_appendall(s, "null");
        else
            sqlite3_str_appendf(s, "%f", (double)v.f[i]);
    }
    sqlite3_str_appendchar(s, 1, ']');
    vec_free(&v);
    if (sqlite3_str_errcode(s) != SQLITE_OK) {
        sqlite3_free(sqlite3_str_finish(s));
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int len = sqlite3_str_length(s);
    sqlite3_result_text(ctx, sqlite3_str_finish(s), len, sqlite3_free);
    sqlite3_result_subtype(ctx, JSON_SUBTYPE);
}

/* vec_distance_l2 / _l1 / _cosine / vec_dot(a, b): a REAL, or NULL where
 * undefined (cosine with a zero vector; any NaN element). The metric is the
 * function's user data. */
static void fn_vec_distance(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t a, b;
    if (vec_arg_pair(ctx, argv, &a, &b) != SQLITE_OK)
        return;
    double d;
    switch (*(const int *)sqlite3_user_data(ctx)) {
    case METRIC_L2: d = sqrt(vk_l2sq(a.f, b.f, a.n)); break;
    case METRIC_L1: d = vk_l1(a.f, b.f, a.n); break;
    case METRIC_DOT: d = vk_dot(a.f, b.f, a.n); break;
    default: d = vk_cosine(a.f, b.f, a.n); break;
    }
    vec_keep(ctx, 0, &a);
    vec_keep(ctx, 1, &b);
    if (isnan(d))
        sqlite3_result_null(ctx);
    else
        sqlite3_result_double(ctx, d);
}

/* vec_normalize(vector): v / |v|_2, same element type. A zero vector is
 * returned unchanged (sqlite-vec returns NaNs; see docs/SQL.md). */
static void fn_vec_normalize(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t v;
    if (vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    float *out = sqlite3_malloc64((sqlite3_uint64)v.n * sizeof *out);
    if (!out) {
        vec_free(&v);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    double norm = sqrt(vk_dot(v.f, v.f, v.n));
    for (int64_t i = 0; i < v.n; i++)
        out[i] = norm == 0 ? v.f[i] : (float)(v.f[i] / norm);
    int type = v.type;
    vec_free(&v);
    vec_result(ctx, out, v.n, type, 1);
}

/* vec_slice(vector, start, end): elements [start, end), 0-based, same type.
 * start and end are read as sqlite3_value_int64 would (as sqlite-vec). */
static void fn_vec_slice(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t v;
    if (vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    int64_t start = sqlite3_value_int64(argv[1]);
    int64_t end = sqlite3_value_int64(argv[2]);
    const char *err = NULL;
    if (start < 0)
        err = "slice 'start' index must be a postive number.";
    else if (start > v.n)
        err = "slice 'start' index is greater than the number of dimensions";
    else if (end < 0)
        err = "slice 'end' index must be a postive number.";
    else if (end > v.n)
        err = "slice 'end' index is greater than the number of dimensions";
    else if (start > end)
        err = "slice 'start' index is greater than 'end' index";
    else if (start == end)
        err = "slice 'start' index is equal to the 'end' index, vectors must have non-zero length";
    if (err) {
        vec_free(&v);
        sqlite3_result_error(ctx, err, -1);
        return;
    }
    vec_result(ctx, v.f + start, end - start, v.type, 0);
    vec_free(&v);
}

/* vec_add / vec_sub(a, b): element-wise, in float. float16 if both inputs
 * are, float32 otherwise. The operation is the user data (+1 or -1). */
static void fn_vec_addsub(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    vec_t a, b;
    if (vec_arg_pair(ctx, argv, &a, &b) != SQLITE_OK)
        return;
    float *out = sqlite3_malloc64((sqlite3_uint64)a.n * sizeof *out);
    if (!out) {
        vec_free(&a);
        vec_free(&b);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int sub = *(const int *)sqlite3_user_data(ctx) < 0;
    for (int64_t i = 0; i < a.n; i++)
        out[i] = sub ? a.f[i] - b.f[i] : a.f[i] + b.f[i];
    int type = a.type == VEC_F16 && b.type == VEC_F16 ? VEC_F16 : VEC_F32;
    int64_t n = a.n;
    vec_keep(ctx, 0, &a);
    vec_keep(ctx, 1, &b);
    vec_result(ctx, out, n, type, 1);
}

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
    vec_t v;
    if (vec_arg(ctx, val, "vec_avg: ", &v) != SQLITE_OK)
        return;
    if (!st->sum) {
        st->sum = sqlite3_malloc64((sqlite3_uint64)v.n * sizeof *st->sum);
        if (!st->sum) {
            vec_free(&v);
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
        vec_free(&v);
        return;
    }
    for (int64_t i = 0; i < v.n; i++)
        st->sum[i] += sign * v.f[i];
    st->count += sign > 0 ? 1 : -1;
    vec_free(&v);
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
    vec_result(ctx, out, st->n, VEC_F32, 1);
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

/* ---------------------------------------------------------------------------
 * vec_knn: top-k nearest neighbours of a query within one feature set.
 *
 *   SELECT path, label, split, sha256, distance, dataset
 *   FROM vec_knn(query, k, featureset [, metric])
 *   [WHERE split = ? AND label = ? AND path != ? AND sha256 != ? AND dataset = ?]
 *
 * Scans the feature set's vectors (the embeddings view's rows) with one
 * prepared statement, computes each distance in C and keeps the k best in a
 * max-heap; rows come out by increasing distance (ties by path). The WHERE
 * terms listed are applied before ranking, so "the 10 nearest in the train
 * split" and "excluding the query image" mean what they say. Rows whose
 * distance is undefined (cosine of a zero vector, NaNs) are skipped.
 *
 * In a join (vec_knn(e.vector, ...) for every row e) SQLite calls xFilter
 * again and again on one cursor. From the second call on, the cursor keeps
 * the feature set's vectors in memory, decoded, with their norms (up to
 * knn_cache_max() bytes; larger sets are streamed each time), for as long
 * as neither this connection nor another one has changed the database.
 * ------------------------------------------------------------------------- */

#define KNN_CACHE_MAX ((int64_t)512 << 20)

/* The cache's budget: KNN_CACHE_MAX, or half of SQLite's soft heap limit
 * when one is set (PRAGMA soft_heap_limit, sqlite3_soft_heap_limit64). */
static int64_t knn_cache_max(void) {
    int64_t lim = sqlite3_soft_heap_limit64(-1);
    return lim > 0 && lim / 2 < KNN_CACHE_MAX ? lim / 2 : KNN_CACHE_MAX;
}

enum {
    KNN_PATH,
    KNN_LABEL,
    KNN_SPLIT,
    KNN_SHA256,
    KNN_DISTANCE,
    KNN_QUERY,
    KNN_K,
    KNN_FEATURESET,
    KNN_METRIC,
    KNN_DATASET /* last, so that the hidden columns keep their places */
};

/* idxNum bits: which arguments xFilter receives, in this order. */
enum {
    KNN_HAS_QUERY = 1,
    KNN_HAS_K = 2,
    KNN_HAS_FEATURESET = 4,
    KNN_HAS_METRIC = 8,
    KNN_HAS_SPLIT = 16,
    KNN_HAS_LABEL = 32,
    KNN_HAS_NOT_PATH = 64,
    KNN_HAS_NOT_SHA256 = 128,
    KNN_HAS_DATASET = 256,
    KNN_NARGS = 9
};

/* A result row. Strings are the row's own copies when owned (streaming),
 * otherwise borrowed from the cursor's cache. */
typedef struct {
    double distance;
    const char *path, *label, *split, *sha256, *dataset;
    int owned;
} knn_row;

/* A cached vector's image and norm; its floats are in knn_cursor.vecs. */
typedef struct {
    char *path, *label, *split, *sha256, *dataset;
    double norm2;
} knn_item;

typedef struct {
    sqlite3_vtab base;
    sqlite3 *db;
} knn_vtab;

typedef struct {
    sqlite3_vtab_cursor base;
    knn_row *rows; /* a max-heap while scanning, sorted ascending after */
    int64_t nrows, cap;
    int64_t pos;
    int64_t scans; /* xFilter calls so far */
    /* the cache: nitems vectors of feature set c_fsid (c_dim floats each) */
    int c_valid;
    int64_t c_fsid, c_dim;
    int c_changes;
    unsigned c_version;
    int64_t c_nofit; /* id of a feature set found too large to keep, or 0 */
    knn_item *items;
    float *vecs;
    int64_t nitems;
} knn_cursor;

/* The WHERE terms vec_knn applies itself. A NULL value matches nothing, as
 * in SQL. */
typedef struct {
    sqlite3_value *split, *label, *not_path, *not_sha256, *dataset;
} knn_where;

static int knn_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                       sqlite3_vtab **out, char **err) {
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(path TEXT, label TEXT, split TEXT, "
                                      "sha256 TEXT, distance REAL, query HIDDEN, k HIDDEN, "
                                      "featureset HIDDEN, metric HIDDEN, dataset TEXT)");
    if (rc != SQLITE_OK)
        return rc;
    knn_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    *out = &vt->base;
    return SQLITE_OK;
}

static int knn_disconnect(sqlite3_vtab *vt) {
    sqlite3_free(vt);
    return SQLITE_OK;
}

static int knn_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
    (void)vt;
    int at[KNN_NARGS];
    for (int j = 0; j < KNN_NARGS; j++)
        at[j] = -1;
    int unusable = 0;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        int bit = -1;
        if (c->op == SQLITE_INDEX_CONSTRAINT_EQ) {
            switch (c->iColumn) {
            case KNN_QUERY: bit = 0; break;
            case KNN_K: bit = 1; break;
            case KNN_FEATURESET: bit = 2; break;
            case KNN_METRIC: bit = 3; break;
            case KNN_SPLIT: bit = 4; break;
            case KNN_LABEL: bit = 5; break;
            case KNN_DATASET: bit = 8; break;
            }
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_NE) {
            if (c->iColumn == KNN_PATH)
                bit = 6;
            else if (c->iColumn == KNN_SHA256)
                bit = 7;
        }
        if (bit < 0)
            continue;
        /* A filter on a visible column is only applied here when it compares
         * as SQLite's own = and != would (BINARY collation); x IN (...) would
         * call xFilter once per value (a top-k per value, concatenated). Both
         * are left to SQLite, after ranking. */
        if (bit >= 4) {
            const char *coll = sqlite3_vtab_collation(info, i);
            if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
                continue;
        }
#if SQLITE_VERSION_NUMBER >= 3038000
        /* (the extension may run in an older host than its headers) */
        if (c->usable && sqlite3_libversion_number() >= 3038000 && sqlite3_vtab_in(info, i, -1))
            continue;
#endif
        if (!c->usable) {
            unusable = 1;
            continue;
        }
        if (at[bit] < 0)
            at[bit] = i;
    }
    /* A plan where an argument or a filter exists but its value is not known
     * yet (a join in the other order) is refused: SQLite then picks an order
     * that binds it, so a filter such as k.path != e.path always applies
     * before ranking, whatever the plan. Arguments absent altogether are
     * reported by xFilter. */
    if (unusable)
        return SQLITE_CONSTRAINT;
    int idx = 0, argv_index = 0;
    for (int j = 0; j < KNN_NARGS; j++) {
        if (at[j] < 0)
            continue;
        idx |= 1 << j;
        info->aConstraintUsage[at[j]].argvIndex = ++argv_index;
        /* The hidden arguments are consumed; the filters are re-checked by
         * SQLite too, which costs nothing and keeps exotic cases exact. */
        info->aConstraintUsage[at[j]].omit = j <= 3;
    }
    info->idxNum = idx;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == KNN_DISTANCE && !info->aOrderBy[0].desc)
        info->orderByConsumed = 1;
    int complete = (idx & 7) == 7;
    info->estimatedCost = complete ? 1e6 : 1e12;
    info->estimatedRows = complete ? 10 : 1000000;
    return SQLITE_OK;
}

static int knn_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **out) {
    (void)vt;
    knn_cursor *cur = sqlite3_malloc(sizeof *cur);
    if (!cur)
        return SQLITE_NOMEM;
    memset(cur, 0, sizeof *cur);
    *out = &cur->base;
    return SQLITE_OK;
}

static void knn_row_free(knn_row *r) {
    if (r->owned) {
        sqlite3_free((char *)r->path);
        sqlite3_free((char *)r->label);
        sqlite3_free((char *)r->split);
        sqlite3_free((char *)r->sha256);
        sqlite3_free((char *)r->dataset);
    }
}

static void knn_reset(knn_cursor *cur) {
    for (int64_t i = 0; i < cur->nrows; i++)
        knn_row_free(&cur->rows[i]);
    sqlite3_free(cur->rows);
    cur->rows = NULL;
    cur->nrows = cur->cap = cur->pos = 0;
}

static void knn_cache_free(knn_cursor *cur) {
    for (int64_t i = 0; i < cur->nitems; i++) {
        sqlite3_free(cur->items[i].path);
        sqlite3_free(cur->items[i].label);
        sqlite3_free(cur->items[i].split);
        sqlite3_free(cur->items[i].sha256);
        sqlite3_free(cur->items[i].dataset);
    }
    sqlite3_free(cur->items);
    sqlite3_free(cur->vecs);
    cur->items = NULL;
    cur->vecs = NULL;
    cur->nitems = 0;
    cur->c_valid = 0;
}

static int knn_close(sqlite3_vtab_cursor *c) {
    knn_cursor *cur = (knn_cursor *)c;
    knn_reset(cur);
    knn_cache_free(cur);
    sqlite3_free(cur);
    return SQLITE_OK;
}

/* Is row a ranked after row b? Larger distance, then larger path. */
static int knn_after(const knn_row *a, const knn_row *b) {
    if (a->distance != b->distance)
        return a->distance > b->distance;
    return strcmp(a->path, b->path) > 0;
}

static void knn_sift_down(knn_row *h, int64_t n, int64_t i) {
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && knn_after(&h[l], &h[m]))
            m = l;
        if (r < n && knn_after(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        knn_row t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void knn_sift_up(knn_row *h, int64_t i) {
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!knn_after(&h[i], &h[p]))
            return;
        knn_row t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static char *knn_strdup(const char *s) {
    return s ? sqlite3_mprintf("%s", s) : NULL;
}

/* Offer a candidate to the heap of at most k rows. With copy, the strings
 * are copied, and only when the candidate gets in. */
static int knn_offer(knn_cursor *cur, int64_t k, double d, const char *path, const char *label,
                     const char *split, const char *sha256, const char *dataset, int copy) {
    knn_row cand = {d, path, label, split, sha256, dataset, 0};
    if (cur->nrows == k) {
        if (!knn_after(&cur->rows[0], &cand))
            return SQLITE_OK;
        knn_row_free(&cur->rows[0]);
        cur->rows[0] = cur->rows[--cur->nrows];
        knn_sift_down(cur->rows, cur->nrows, 0);
    }
    if (cur->nrows == cur->cap) {
        int64_t cap = cur->cap ? 2 * cur->cap : 16;
        if (cap > k)
            cap = k;
        knn_row *r = sqlite3_realloc64(cur->rows, (sqlite3_uint64)cap * sizeof *r);
        if (!r)
            return SQLITE_NOMEM;
        cur->rows = r;
        cur->cap = cap;
    }
    if (copy) {
        cand.owned = 1;
        cand.path = knn_strdup(path);
        cand.label = knn_strdup(label);
        cand.split = knn_strdup(split);
        cand.sha256 = knn_strdup(sha256);
        cand.dataset = knn_strdup(dataset);
        if (!cand.path || (label && !cand.label) || (split && !cand.split) ||
            (sha256 && !cand.sha256) || (dataset && !cand.dataset)) {
            knn_row_free(&cand);
            return SQLITE_NOMEM;
        }
    }
    cur->rows[cur->nrows++] = cand;
    knn_sift_up(cur->rows, cur->nrows - 1);
    return SQLITE_OK;
}

static int knn_cmp(const void *pa, const void *pb) {
    const knn_row *a = pa, *b = pb;
    return knn_after(a, b) ? 1 : knn_after(b, a) ? -1 : 0;
}

static int knn_error(knn_cursor *cur, int rc, const char *fmt, ...) {
    sqlite3_vtab *vt = cur->base.pVtab;
    sqlite3_free(vt->zErrMsg);
    va_list ap;
    va_start(ap, fmt);
    vt->zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    return rc;
}

/* s = v (SQL =, BINARY): false when either is NULL. */
static int knn_eq(const char *s, sqlite3_value *v) {
    const char *t = (const char *)sqlite3_value_text(v);
    return s && t && strcmp(s, t) == 0;
}

static int knn_keep(const knn_where *w, const char *path, const char *label, const char *split,
                    const char *sha256, const char *dataset) {
    if (w->split && !knn_eq(split, w->split))
        return 0;
    if (w->dataset && !knn_eq(dataset, w->dataset))
        return 0;
    if (w->label && !knn_eq(label, w->label))
        return 0;
    if (w->not_path &&
        (sqlite3_value_type(w->not_path) == SQLITE_NULL || knn_eq(path, w->not_path)))
        return 0;
    if (w->not_sha256 &&
        (sqlite3_value_type(w->not_sha256) == SQLITE_NULL || knn_eq(sha256, w->not_sha256)))
        return 0;
    return 1;
}

/* A feature set: what the query and the stored vectors must look like. */
typedef struct {
    int64_t id, dim;
    int type; /* VEC_F32 | VEC_F16 */
    char *name;
} knn_fs;

/* The feature set named (or numbered) by val. */
static int knn_featureset(knn_cursor *cur, sqlite3 *db, sqlite3_value *val, knn_fs *fs) {
    if (sqlite3_value_type(val) == SQLITE_NULL)
        return knn_error(cur, SQLITE_ERROR, "vec_knn: the feature set is NULL");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT id, dim, dtype, name FROM featuresets "
                                "WHERE name = ?1 OR id = ?1 ORDER BY name = ?1 DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the feature sets (%s)", sqlite3_errmsg(db));
    sqlite3_bind_value(st, 1, val);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        fs->id = sqlite3_column_int64(st, 0);
        fs->dim = sqlite3_column_int64(st, 1);
        const char *dt = (const char *)sqlite3_column_text(st, 2);
        fs->type = dt && strcmp(dt, "f16") == 0 ? VEC_F16 : VEC_F32;
        fs->name = knn_strdup((const char *)sqlite3_column_text(st, 3));
        rc = fs->name ? SQLITE_OK : SQLITE_NOMEM;
        if (rc == SQLITE_OK && fs->dim <= 0)
            rc = knn_error(cur, SQLITE_ERROR, "vec_knn: feature set '%s' has dimension %lld",
                           fs->name, (long long)fs->dim);
    } else if (rc == SQLITE_DONE) {
        rc = knn_error(cur, SQLITE_ERROR,
                       "vec_knn: no feature set named '%s' (SELECT name FROM featuresets "
                       "lists them)",
                       sqlite3_value_text(val));
    } else {
        rc = knn_error(cur, rc, "vec_knn: cannot read the feature sets (%s)", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* The query as dim floats. A BLOB is read by its length against the feature
 * set's dim (4*dim bytes float32, 2*dim float16) unless tagged. */
static int knn_query(knn_cursor *cur, sqlite3_value *val, const knn_fs *fs, vec_t *q) {
    memset(q, 0, sizeof *q);
    int vt = sqlite3_value_type(val);
    if (vt == SQLITE_NULL)
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: the query vector is NULL (did its subquery find a row?)");
    int as = VEC_F32;
    if (vt == SQLITE_BLOB) {
        int64_t bytes = sqlite3_value_bytes(val);
        int sub = (int)sqlite3_value_subtype(val);
        if (sub != VEC_F16 && sub != VEC_F32) {
            if (bytes == 2 * fs->dim)
                as = VEC_F16;
            else if (bytes != 4 * fs->dim)
                return knn_error(cur, SQLITE_ERROR,
                                 "vec_knn: the query vector has %lld bytes, but feature set "
                                 "'%s' has %lld dimensions (%lld bytes as float32, %lld as "
                                 "float16)",
                                 (long long)bytes, fs->name, (long long)fs->dim,
                                 (long long)(4 * fs->dim), (long long)(2 * fs->dim));
        }
    }
    char *err;
    int rc = vec_parse_as(val, as, q, &err);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM || !err)
            return SQLITE_NOMEM;
        rc = knn_error(cur, rc, "vec_knn: query: %s", err);
        sqlite3_free(err);
        return rc;
    }
    if (q->n != fs->dim) {
        rc = knn_error(cur, SQLITE_ERROR,
                       "vec_knn: the query vector has %lld dimensions, but feature set '%s' "
                       "has %lld",
                       (long long)q->n, fs->name, (long long)fs->dim);
        vec_free(q);
    }
    return rc;
}

static int knn_metric(knn_cursor *cur, sqlite3_value *val, int *metric) {
    const char *m = (const char *)sqlite3_value_text(val);
    if (!m || sqlite3_stricmp(m, "cosine") == 0)
        *metric = METRIC_COSINE;
    else if (sqlite3_stricmp(m, "l2") == 0)
        *metric = METRIC_L2;
    else if (sqlite3_stricmp(m, "l1") == 0)
        *metric = METRIC_L1;
    else if (sqlite3_stricmp(m, "dot") == 0)
        *metric = METRIC_DOT;
    else
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: unknown metric '%s': expected 'cosine', 'l2', 'l1' or 'dot'", m);
    return SQLITE_OK;
}

/* Distance of the query q (|q|^2 = qn2) to v; vn2 is |v|^2 when known, or
 * negative. NaN when undefined. 'dot' ranks by -dot(q, v). */
static double knn_distance(int metric, const float *q, double qn2, const float *v, double vn2,
                           int64_t dim) {
    switch (metric) {
    case METRIC_L2: return sqrt(vk_l2sq(q, v, dim));
    case METRIC_L1: return vk_l1(q, v, dim);
    case METRIC_DOT: return -vk_dot(q, v, dim);
    default:
        if (vn2 >= 0)
            return vk_cosine_from(vk_dot(q, v, dim), qn2, vn2);
        double dot, nv;
        vk_dot_norm(q, v, dim, &dot, &nv);
        return vk_cosine_from(dot, qn2, nv);
    }
}

/* The feature set's (image, vector, dataset name) rows, in a prepared
 * statement. A database from before datasets (schema version 2, read by
 * the loadable extension) has none: NULL. */
static int knn_prepare(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, sqlite3_stmt **st) {
    /* Asked, not tried: the schema decides, so that another error in the
     * statement is reported as itself, not taken for an older schema. */
    int has_datasets = sqlite3_table_column_metadata(db, NULL, "images", "dataset", NULL, NULL,
                                                     NULL, NULL, NULL) == SQLITE_OK &&
                       sqlite3_table_column_metadata(db, NULL, "datasets", "name", NULL, NULL, NULL,
                                                     NULL, NULL) == SQLITE_OK;
    int rc = SQLITE_ERROR;
    if (has_datasets)
        rc = sqlite3_prepare_v2(db,
                                "SELECT i.path, i.label, i.split, v.sha256, v.vector, d.name "
                                "FROM vectors v JOIN images i ON i.sha256 = v.sha256 "
                                "JOIN datasets d ON d.id = i.dataset "
                                "WHERE v.featureset = ?1",
                                -1, st, NULL);
    if (!has_datasets)
        rc = sqlite3_prepare_v2(db,
                                "SELECT i.path, i.label, i.split, v.sha256, v.vector, NULL "
                                "FROM vectors v JOIN images i ON i.sha256 = v.sha256 "
                                "WHERE v.featureset = ?1",
                                -1, st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(*st, 1, fs->id);
    return SQLITE_OK;
}

/* The current row's vector as dim floats: in place, or decoded into buf. */
static int knn_row_vector(knn_cursor *cur, sqlite3_stmt *st, const knn_fs *fs, float *buf,
                          const float **out) {
    const void *blob = sqlite3_column_blob(st, 4);
    int64_t bytes = sqlite3_column_bytes(st, 4);
    int64_t want = fs->dim * (fs->type == VEC_F16 ? 2 : 4);
    if (bytes != want || !blob) {
        if (!blob && bytes > 0)
            return SQLITE_NOMEM;
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: the vector of %s in feature set '%s' has %lld bytes, "
                         "expected %lld (%lld dimensions of %s)",
                         sqlite3_column_text(st, 0), fs->name, (long long)bytes, (long long)want,
                         (long long)fs->dim, vec_type_name(fs->type));
    }
    if (fs->type == VEC_F16) {
        vec_f16_decode(blob, buf, fs->dim);
        *out = buf;
    } else if (((uintptr_t)blob & 3) == 0) {
        *out = blob;
    } else {
        memcpy(buf, blob, (size_t)bytes);
        *out = buf;
    }
    return SQLITE_OK;
}

static int knn_step_error(knn_cursor *cur, sqlite3 *db, int rc) {
    if (rc == SQLITE_DONE)
        return SQLITE_OK;
    if (rc != SQLITE_OK && rc != SQLITE_NOMEM && !cur->base.pVtab->zErrMsg)
        rc = knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    return rc;
}

/* One pass over the stored rows: the filters first (the vector BLOB is not
 * even read for a row they drop), then the distance, then the heap. */
static int knn_scan(knn_cursor *cur, sqlite3 *db, const knn_fs *fs, const vec_t *q, int64_t k,
                    int metric, const knn_where *w) {
    sqlite3_stmt *st;
    int rc = knn_prepare(cur, db, fs, &st);
    if (rc != SQLITE_OK)
        return rc;
    float *buf = sqlite3_malloc64((sqlite3_uint64)fs->dim * sizeof *buf);
    if (!buf) {
        sqlite3_finalize(st);
        return SQLITE_NOMEM;
    }
    double qn2 = vk_dot(q->f, q->f, fs->dim);
    int filtered = w->split || w->label || w->not_path || w->not_sha256 || w->dataset;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (filtered) {
            const char *path = (const char *)sqlite3_column_text(st, 0);
            if (!path || !knn_keep(w, path, (const char *)sqlite3_column_text(st, 1),
                                   (const char *)sqlite3_column_text(st, 2),
                                   (const char *)sqlite3_column_text(st, 3),
                                   (const char *)sqlite3_column_text(st, 5)))
                continue;
        }
        const float *v;
        if ((rc = knn_row_vector(cur, st, fs, buf, &v)) != SQLITE_OK)
            break;
        double d = knn_distance(metric, q->f, qn2, v, -1, fs->dim);
        if (isnan(d))
            continue;
        /* A row that cannot get into the heap costs no strings. */
        if (cur->nrows == k && d > cur->rows[0].distance)
            continue;
        const char *path = (const char *)sqlite3_column_text(st, 0);
        if (!path)
            continue;
        if ((rc = knn_offer(cur, k, d, path, (const char *)sqlite3_column_text(st, 1),
                            (const char *)sqlite3_column_text(st, 2),
                            (const char *)sqlite3_column_text(st, 3),
                            (const char *)sqlite3_column_text(st, 5), 1)) != SQLITE_OK)
            break;
    }
    rc = knn_step_error(cur, db, rc);
    sqlite3_free(buf);
    sqlite3_finalize(st);
    return rc;
}

/* The database's state: this connection's changes, other connections'
 * commits. A cache is valid while both stay the same. */
static void knn_stamp(sqlite3 *db, int *changes, unsigned *version) {
    *changes = sqlite3_total_changes(db);
    *version = 0;
    sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, version);
}

/* Load every row of the feature set into the cursor's cache. Gives up
 * quietly (c_valid = 0) past knn_cache_max() bytes, and remembers that
 * this set does not fit (c_nofit) until the database changes. */
static int knn_cache_load(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    knn_cache_free(cur);
    int64_t cap = 0, rowbytes = fs->dim * (int64_t)sizeof(float), budget = knn_cache_max();
    int fits = 1;
    /* The number of vectors first (cheap: no vector is read), so that a set
     * far too large is not half-loaded for nothing. */
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(db, "SELECT count(*) FROM vectors WHERE featureset = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return knn_error(cur, rc, "vec_knn: cannot read the vectors (%s)", sqlite3_errmsg(db));
    sqlite3_bind_int64(st, 1, fs->id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) * rowbytes > budget)
        fits = 0;
    sqlite3_finalize(st);
    st = NULL;
    if (fits && (rc = knn_prepare(cur, db, fs, &st)) != SQLITE_OK)
        return rc;
    while (fits && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((cur->nitems + 1) * rowbytes > budget) {
            fits = 0;
            break;
        }
        if (cur->nitems == cap) {
            int64_t ncap = cap ? 2 * cap : 256;
            if (ncap * rowbytes > budget)
                ncap = budget / rowbytes;
            knn_item *it = sqlite3_realloc64(cur->items, (sqlite3_uint64)ncap * sizeof *it);
            if (it)
                cur->items = it;
            float *vs = sqlite3_realloc64(cur->vecs, (sqlite3_uint64)(ncap * rowbytes));
            if (vs)
                cur->vecs = vs;
            if (!it || !vs) {
                rc = SQLITE_NOMEM;
                break;
            }
            cap = ncap;
        }
        float *dst = cur->vecs + cur->nitems * fs->dim;
        const float *v;
        if ((rc = knn_row_vector(cur, st, fs, dst, &v)) != SQLITE_OK)
            break;
        if (v != dst)
            memcpy(dst, v, (size_t)rowbytes);
        knn_item *it = &cur->items[cur->nitems];
        it->path = knn_strdup((const char *)sqlite3_column_text(st, 0));
        it->label = knn_strdup((const char *)sqlite3_column_text(st, 1));
        it->split = knn_strdup((const char *)sqlite3_column_text(st, 2));
        it->sha256 = knn_strdup((const char *)sqlite3_column_text(st, 3));
        it->dataset = knn_strdup((const char *)sqlite3_column_text(st, 5));
        it->norm2 = vk_dot(dst, dst, fs->dim);
        cur->nitems++;
        if (!it->path || (!it->label && sqlite3_column_type(st, 1) != SQLITE_NULL) ||
            (!it->split && sqlite3_column_type(st, 2) != SQLITE_NULL) || !it->sha256 ||
            (!it->dataset && sqlite3_column_type(st, 5) != SQLITE_NULL)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    rc = fits ? knn_step_error(cur, db, rc) : SQLITE_OK;
    sqlite3_finalize(st);
    if (rc != SQLITE_OK || !fits) {
        knn_cache_free(cur);
        if (!fits) { /* do not try again for this set while nothing changes */
            cur->c_nofit = fs->id;
            cur->c_fsid = fs->id;
            cur->c_dim = fs->dim;
            knn_stamp(db, &cur->c_changes, &cur->c_version);
        }
        return rc;
    }
    cur->c_nofit = 0;
    cur->c_valid = 1;
    cur->c_fsid = fs->id;
    cur->c_dim = fs->dim;
    knn_stamp(db, &cur->c_changes, &cur->c_version);
    return SQLITE_OK;
}

/* Does the cursor's cache (or its "too large" verdict) still describe
 * feature set fs as stored now? */
static int knn_cache_current(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    if (cur->c_fsid != fs->id || cur->c_dim != fs->dim)
        return 0;
    int changes;
    unsigned version;
    knn_stamp(db, &changes, &version);
    return changes == cur->c_changes && version == cur->c_version;
}

static int knn_cache_usable(knn_cursor *cur, sqlite3 *db, const knn_fs *fs) {
    return cur->c_valid && knn_cache_current(cur, db, fs);
}

/* Rank the cached rows: no SQL, no decoding, norms known. */
static int knn_scan_cache(knn_cursor *cur, const vec_t *q, int64_t k, int metric,
                          const knn_where *w) {
    double qn2 = vk_dot(q->f, q->f, cur->c_dim);
    for (int64_t i = 0; i < cur->nitems; i++) {
        const knn_item *it = &cur->items[i];
        if (!knn_keep(w, it->path, it->label, it->split, it->sha256, it->dataset))
            continue;
        double d =
            knn_distance(metric, q->f, qn2, cur->vecs + i * cur->c_dim, it->norm2, cur->c_dim);
        if (isnan(d))
            continue;
        int rc = knn_offer(cur, k, d, it->path, it->label, it->split, it->sha256, it->dataset, 0);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int knn_filter(sqlite3_vtab_cursor *c, int idx, const char *idx_str, int argc,
                      sqlite3_value **argv) {
    (void)idx_str;
    knn_cursor *cur = (knn_cursor *)c;
    sqlite3 *db = ((knn_vtab *)c->pVtab)->db;
    knn_reset(cur);

    sqlite3_value *arg[KNN_NARGS] = {0};
    for (int j = 0, a = 0; j < KNN_NARGS && a < argc; j++)
        if (idx & (1 << j))
            arg[j] = argv[a++];
    if (!arg[0] || !arg[1] || !arg[2])
        return knn_error(cur, SQLITE_ERROR,
                         "vec_knn: needs a query vector, k and a feature set: "
                         "SELECT * FROM vec_knn(query, k, featureset [, metric])");

    int kt = sqlite3_value_numeric_type(arg[1]);
    double kd = sqlite3_value_double(arg[1]);
    if ((kt != SQLITE_INTEGER && !(kt == SQLITE_FLOAT && kd == floor(kd))) || kd < 1)
        return knn_error(cur, SQLITE_ERROR, "vec_knn: k must be a positive integer, not %s",
                         kt == SQLITE_NULL ? "NULL" : (const char *)sqlite3_value_text(arg[1]));
    int64_t k = kt == SQLITE_INTEGER ? sqlite3_value_int64(arg[1])
                : kd > 1e15          ? (int64_t)1e15
                                     : (int64_t)kd;

    int metric = METRIC_COSINE;
    int rc;
    if (arg[3] && (rc = knn_metric(cur, arg[3], &metric)) != SQLITE_OK)
        return rc;
    knn_where w = {arg[4], arg[5], arg[6], arg[7], arg[8]};

    knn_fs fs = {0};
    if ((rc = knn_featureset(cur, db, arg[2], &fs)) != SQLITE_OK) {
        sqlite3_free(fs.name);
        return rc;
    }
    vec_t q;
    if ((rc = knn_query(cur, arg[0], &fs, &q)) != SQLITE_OK) {
        sqlite3_free(fs.name);
        return rc;
    }
    /* Second and later calls (a join): rank from memory when it fits. */
    if (cur->scans++ > 0 && !knn_cache_usable(cur, db, &fs) &&
        !(cur->c_nofit == fs.id && knn_cache_current(cur, db, &fs)))
        rc = knn_cache_load(cur, db, &fs);
    if (rc == SQLITE_OK) {
        if (knn_cache_usable(cur, db, &fs))
            rc = knn_scan_cache(cur, &q, k, metric, &w);
        else
            rc = knn_scan(cur, db, &fs, &q, k, metric, &w);
    }
    vec_free(&q);
    sqlite3_free(fs.name);
    if (rc != SQLITE_OK) {
        knn_reset(cur);
        return rc;
    }
    if (cur->nrows > 1)
        qsort(cur->rows, (size_t)cur->nrows, sizeof *cur->rows, knn_cmp);
    return SQLITE_OK;
}

static int knn_next(sqlite3_vtab_cursor *c) {
    ((knn_cursor *)c)->pos++;
    return SQLITE_OK;
}

static int knn_eof(sqlite3_vtab_cursor *c) {
    knn_cursor *cur = (knn_cursor *)c;
    return cur->pos >= cur->nrows;
}

static void knn_text(sqlite3_context *ctx, const char *s) {
    if (s)
        sqlite3_result_text(ctx, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_result_null(ctx);
}

static int knn_column(sqlite3_vtab_cursor *c, sqlite3_context *ctx, int col) {
    knn_cursor *cur = (knn_cursor *)c;
    const knn_row *r = &cur->rows[cur->pos];
    switch (col) {
    case KNN_PATH: knn_text(ctx, r->path); break;
    case KNN_LABEL: knn_text(ctx, r->label); break;
    case KNN_SPLIT: knn_text(ctx, r->split); break;
    case KNN_SHA256: knn_text(ctx, r->sha256); break;
    case KNN_DISTANCE: sqlite3_result_double(ctx, r->distance); break;
    case KNN_DATASET: knn_text(ctx, r->dataset); break;
    default: sqlite3_result_null(ctx); break; /* hidden arguments */
    }
    return SQLITE_OK;
}

static int knn_rowid(sqlite3_vtab_cursor *c, sqlite3_int64 *rowid) {
    *rowid = ((knn_cursor *)c)->pos + 1;
    return SQLITE_OK;
}

static sqlite3_module knn_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE ... USING vec_knn */
    .xConnect = knn_connect,
    .xBestIndex = knn_best_index,
    .xDisconnect = knn_disconnect,
    .xDestroy = knn_disconnect,
    .xOpen = knn_open,
    .xClose = knn_close,
    .xFilter = knn_filter,
    .xNext = knn_next,
    .xEof = knn_eof,
    .xColumn = knn_column,
    .xRowid = knn_rowid,
};

/* ---------------------------------------------------------------------------
 * vec_each(vector): one row per element, as sqlite-vec's: rowid is the
 * 0-based index, value the element (REAL; NaN is NULL). The way to get a
 * number out of a vector, e.g. a stored head's bias:
 * (SELECT value FROM vec_each(h.bias)).
 * ------------------------------------------------------------------------- */

enum { EACH_VALUE, EACH_VECTOR };

typedef struct {
    sqlite3_vtab_cursor base;
    vec_t v;
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
    vec_free(&cur->v);
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int each_filter(sqlite3_vtab_cursor *c, int idx, const char *idx_str, int argc,
                       sqlite3_value **argv) {
    (void)idx_str;
    each_cursor *cur = (each_cursor *)c;
    sqlite3_vtab *vt = c->pVtab;
    vec_free(&cur->v);
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
    int rc = vec_parse(argv[0], &cur->v, &err);
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
    .xDisconnect = knn_disconnect,
    .xDestroy = knn_disconnect,
    .xOpen = each_open,
    .xClose = each_close,
    .xFilter = each_filter,
    .xNext = each_next,
    .xEof = each_eof,
    .xColumn = each_column,
    .xRowid = each_rowid,
};

/* ---------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------- */

static const int type_f32 = VEC_F32, type_f16 = VEC_F16, metric_l2 = METRIC_L2,
                 metric_l1 = METRIC_L1, metric_cosine = METRIC_COSINE, metric_dot = METRIC_DOT,
                 op_add = 1, op_sub = -1;

int bn_vec_register(sqlite3 *db) {
    static const struct {
        const char *name;
        int nargs;
        const int *data;
        void (*fn)(sqlite3_context *, int, sqlite3_value **);
    } fns[] = {
        {"vec_f32", 1, &type_f32, fn_vec_convert},
        {"vec_f32", 2, &type_f32, fn_vec_convert},
        {"vec_f16", 1, &type_f16, fn_vec_convert},
        {"vec_f16", 2, &type_f16, fn_vec_convert},
        {"vec_length", 1, NULL, fn_vec_length},
        {"vec_type", 1, NULL, fn_vec_type},
        {"vec_to_json", 1, NULL, fn_vec_to_json},
        {"vec_distance_l2", 2, &metric_l2, fn_vec_distance},
        {"vec_distance_l1", 2, &metric_l1, fn_vec_distance},
        {"vec_distance_cosine", 2, &metric_cosine, fn_vec_distance},
        {"vec_dot", 2, &metric_dot, fn_vec_distance},
        {"vec_normalize", 1, NULL, fn_vec_normalize},
        {"vec_slice", 3, NULL, fn_vec_slice},
        {"vec_add", 2, &op_add, fn_vec_addsub},
        {"vec_sub", 2, &op_sub, fn_vec_addsub},
    };
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS | SQLITE_SUBTYPE |
                      SQLITE_RESULT_SUBTYPE;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = sqlite3_create_function_v2(db, fns[i].name, fns[i].nargs, flags,
                                            (void *)fns[i].data, fns[i].fn, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    int rc = sqlite3_create_window_function(db, "vec_avg", 1, flags, NULL, fn_vec_avg_step,
                                            fn_vec_avg_final, fn_vec_avg_value, fn_vec_avg_inverse,
                                            NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_create_module_v2(db, "vec_each", &each_module, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_create_module_v2(db, "vec_knn", &knn_module, NULL, NULL);
}

#ifdef BN_VEC_EXTENSION
/* The loadable extension's entry point. SQLite derives the name from the
 * file name (bottleneck_vec.so -> sqlite3_bottleneckvec_init), so
 * `.load ./bottleneck_vec` needs no second argument. */
__attribute__((visibility("default"))) int
sqlite3_bottleneckvec_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
    SQLITE_EXTENSION_INIT2(pApi);
    /* window functions, sqlite3_str, SQLITE_FCNTL_DATA_VERSION */
    if (sqlite3_libversion_number() < 3026000) {
        if (pzErrMsg)
            *pzErrMsg = sqlite3_mprintf("bottleneck_vec needs SQLite 3.26 or later, not %s",
                                        sqlite3_libversion());
        return SQLITE_ERROR;
    }
    int rc = bn_vec_register(db);
    if (rc != SQLITE_OK && pzErrMsg)
        *pzErrMsg = sqlite3_mprintf("bottleneck_vec: cannot register the functions: %s",
                                    sqlite3_errstr(rc));
    return rc;
}
#endif
