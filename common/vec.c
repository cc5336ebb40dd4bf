/*
 * vec.c: SQL functions over vector BLOBs (see vec.h and docs/SQL.md):
 * reading and writing vector values, the scalar functions, and registration.
 *
 * Owns: the sqlite-vec compatible scalar functions (vec_f32, vec_length,
 * vec_type, vec_to_json, vec_distance_l2/_l1/_cosine, vec_normalize,
 * vec_slice, vec_add, vec_sub), what sqlite-vec lacks among scalars (vec_f16,
 * vec_dot), the readers and writers of vector values every module uses
 * (vec_internal.h), and bn_vec_register, which also registers vec_avg
 * (vec_avg.c), vec_each (vec_each.c) and vec_knn (vec_knn.c). The distance
 * kernels are in vec_kernels.c.
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
 * the host's API table (sqlite3ext.h); this file defines its pointer.
 */
#ifdef BN_VEC_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#endif

#include "f16.h"
#include "vec.h"
#include "vec_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The JSON subtype SQLite's json1 gives its text results. */
#define JSON_SUBTYPE 74

/* ---------------------------------------------------------------------------
 * Reading vectors
 * ------------------------------------------------------------------------- */

void bn_vec_free(bn_vec_t *v) {
    sqlite3_free(v->owned);
    v->owned = NULL;
    v->f = NULL;
}

const char *bn_vec_type_name(int type) {
    return type == BN_VEC_F16 ? "float16" : "float32";
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
static int vec_parse_json(const char *s, int64_t len, bn_vec_t *out, char **err) {
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
    out->type = BN_VEC_F32;
    return SQLITE_OK;
bad:
    sqlite3_free(f);
    *err = sqlite3_mprintf("JSON parsing error");
    return SQLITE_ERROR;
}

/* Decode n little-endian halves at p (any alignment) into floats. */
void bn_vec_f16_decode(const unsigned char *p, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = bn_f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

/* Read bytes of BLOB as elements of type (BN_VEC_F32 or BN_VEC_F16) into out.
 * float32 data is used in place when 4-byte aligned, copied otherwise. */
static int vec_from_blob(const void *blob, int64_t bytes, int type, bn_vec_t *out, char **err) {
    if (bytes == 0) {
        *err = sqlite3_mprintf("zero-length vectors are not supported.");
        return SQLITE_ERROR;
    }
    if (!blob)
        return SQLITE_NOMEM;
    if (type == BN_VEC_F16) {
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
        bn_vec_f16_decode(blob, f, n);
        out->f = out->owned = f;
        out->n = n;
        out->type = BN_VEC_F16;
        return SQLITE_OK;
    }
    if (bytes % 4) {
        *err = sqlite3_mprintf(
            "invalid float32 vector BLOB length. Must be divisible by 4, found %lld",
            (long long)bytes);
        return SQLITE_ERROR;
    }
    out->n = bytes / 4;
    out->type = BN_VEC_F32;
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
int bn_vec_parse_as(sqlite3_value *val, int as_type, bn_vec_t *out, char **err) {
    memset(out, 0, sizeof *out);
    *err = NULL;
    switch (sqlite3_value_type(val)) {
    case SQLITE_BLOB: {
        int sub = (int)sqlite3_value_subtype(val);
        if (sub == BN_VEC_INT8 || sub == BN_VEC_BIT) {
            *err = sqlite3_mprintf("%s vectors are not supported: bottleneck's vec functions "
                                   "take float32 and float16 vectors",
                                   sub == BN_VEC_INT8 ? "int8" : "bit");
            return SQLITE_ERROR;
        }
        int type = sub == BN_VEC_F16 || sub == BN_VEC_F32 ? sub : as_type;
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

int bn_vec_parse(sqlite3_value *val, bn_vec_t *out, char **err) {
    return bn_vec_parse_as(val, BN_VEC_F32, out, err);
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
int bn_vec_arg(sqlite3_context *ctx, sqlite3_value *val, const char *prefix, bn_vec_t *v) {
    char *err;
    int rc = bn_vec_parse(val, v, &err);
    if (rc != SQLITE_OK)
        vec_result_parse_error(ctx, rc, prefix, err);
    return rc;
}

static void vec_aux_free(void *p) {
    bn_vec_t *v = p;
    bn_vec_free(v);
    sqlite3_free(v);
}

/* Argument i as a vector, reusing the one parsed on an earlier row when the
 * argument is a constant (a bound query vector in ORDER BY
 * vec_distance_cosine(vector, ?)): JSON is then parsed once per statement,
 * not once per row. Release with vec_keep. */
static int vec_arg_i(sqlite3_context *ctx, sqlite3_value **argv, int i, const char *prefix,
                     bn_vec_t *v) {
    const bn_vec_t *c = sqlite3_get_auxdata(ctx, i);
    if (c) {
        *v = *c;
        v->owned = NULL;
        return SQLITE_OK;
    }
    return bn_vec_arg(ctx, argv[i], prefix, v);
}

/* Done with argument i: hand a buffer it owns to SQLite's auxiliary data
 * (kept while the argument is constant, freed at once otherwise). Call
 * after the last use of v: the destructor may run immediately. */
static void vec_keep(sqlite3_context *ctx, int i, bn_vec_t *v) {
    if (v->owned) {
        bn_vec_t *c = sqlite3_malloc(sizeof *c);
        if (c) {
            *c = *v;
            v->owned = NULL;
            v->f = NULL;
            sqlite3_set_auxdata(ctx, i, c, vec_aux_free);
            return;
        }
    }
    bn_vec_free(v);
}

/* Parse the two vectors of a binary function, checking dimensions agree.
 * float16 and float32 may be mixed (both are read as floats). */
static int vec_arg_pair(sqlite3_context *ctx, sqlite3_value **argv, bn_vec_t *a, bn_vec_t *b) {
    if (vec_arg_i(ctx, argv, 0, "Error reading 1st vector: ", a) != SQLITE_OK)
        return SQLITE_ERROR;
    if (vec_arg_i(ctx, argv, 1, "Error reading 2nd vector: ", b) != SQLITE_OK) {
        bn_vec_free(a);
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
        bn_vec_free(a);
        bn_vec_free(b);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* ---------------------------------------------------------------------------
 * Writing vectors
 * ------------------------------------------------------------------------- */

/* Set n floats as the result, encoded and tagged as type. Takes f when
 * owned (sqlite3_malloc'd), copies otherwise. */
void bn_vec_result(sqlite3_context *ctx, const float *f, int64_t n, int type, int owned) {
    if (type == BN_VEC_F16) {
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
static void vec_result_vec(sqlite3_context *ctx, bn_vec_t *v, int type) {
    int owned = v->owned != NULL;
    bn_vec_result(ctx, v->f, v->n, type, owned);
    v->owned = NULL;
    v->f = NULL;
}

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
 * The result type (BN_VEC_F32 or BN_VEC_F16) is the function's user data. */
static void fn_vec_convert(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    int to = *(const int *)sqlite3_user_data(ctx), as = to;
    if (argc == 2) {
        const char *dt = (const char *)sqlite3_value_text(argv[1]);
        if (dt && (strcmp(dt, "f32") == 0 || strcmp(dt, "float32") == 0)) {
            as = BN_VEC_F32;
        } else if (dt && (strcmp(dt, "f16") == 0 || strcmp(dt, "float16") == 0)) {
            as = BN_VEC_F16;
        } else {
            char *msg = sqlite3_mprintf("%s: unknown dtype '%s': expected 'f32' or 'f16'",
                                        to == BN_VEC_F16 ? "vec_f16" : "vec_f32", dt ? dt : "NULL");
            sqlite3_result_error(ctx, msg ? msg : "out of memory", -1);
            sqlite3_free(msg);
            return;
        }
    }
    bn_vec_t v;
    char *err;
    int rc = bn_vec_parse_as(argv[0], as, &v, &err);
    if (rc != SQLITE_OK) {
        vec_result_parse_error(ctx, rc, NULL, err);
        return;
    }
    vec_result_vec(ctx, &v, to);
}

/* vec_length(vector): number of elements. */
static void fn_vec_length(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bn_vec_t v;
    if (bn_vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    sqlite3_result_int64(ctx, v.n);
    bn_vec_free(&v);
}

/* vec_type(vector): 'float32' or 'float16'. */
static void fn_vec_type(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bn_vec_t v;
    if (bn_vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    sqlite3_result_text(ctx, bn_vec_type_name(v.type), -1, SQLITE_STATIC);
    bn_vec_free(&v);
}

/* vec_to_json(vector): '[1.000000,2.500000]', each element as printf's %f
 * (SQLite's printf, as sqlite-vec), NaN as null. JSON subtype. */
static void fn_vec_to_json(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bn_vec_t v;
    if (bn_vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
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
    bn_vec_free(&v);
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
    bn_vec_t a, b;
    if (vec_arg_pair(ctx, argv, &a, &b) != SQLITE_OK)
        return;
    double d;
    switch (*(const int *)sqlite3_user_data(ctx)) {
    case BN_VEC_L2: d = sqrt(bn_vec_l2sq(a.f, b.f, a.n)); break;
    case BN_VEC_L1: d = bn_vec_l1(a.f, b.f, a.n); break;
    case BN_VEC_DOT: d = bn_vec_dot(a.f, b.f, a.n); break;
    default: d = bn_vec_cosine(a.f, b.f, a.n); break;
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
    bn_vec_t v;
    if (bn_vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
        return;
    float *out = sqlite3_malloc64((sqlite3_uint64)v.n * sizeof *out);
    if (!out) {
        bn_vec_free(&v);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    double norm = sqrt(bn_vec_dot(v.f, v.f, v.n));
    for (int64_t i = 0; i < v.n; i++)
        out[i] = norm == 0 ? v.f[i] : (float)(v.f[i] / norm);
    int type = v.type;
    bn_vec_free(&v);
    bn_vec_result(ctx, out, v.n, type, 1);
}

/* vec_slice(vector, start, end): elements [start, end), 0-based, same type.
 * start and end are read as sqlite3_value_int64 would (as sqlite-vec). */
static void fn_vec_slice(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bn_vec_t v;
    if (bn_vec_arg(ctx, argv[0], NULL, &v) != SQLITE_OK)
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
        bn_vec_free(&v);
        sqlite3_result_error(ctx, err, -1);
        return;
    }
    bn_vec_result(ctx, v.f + start, end - start, v.type, 0);
    bn_vec_free(&v);
}

/* vec_add / vec_sub(a, b): element-wise, in float. float16 if both inputs
 * are, float32 otherwise. The operation is the user data (+1 or -1). */
static void fn_vec_addsub(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
    (void)argc;
    bn_vec_t a, b;
    if (vec_arg_pair(ctx, argv, &a, &b) != SQLITE_OK)
        return;
    float *out = sqlite3_malloc64((sqlite3_uint64)a.n * sizeof *out);
    if (!out) {
        bn_vec_free(&a);
        bn_vec_free(&b);
        sqlite3_result_error_nomem(ctx);
        return;
    }
    int sub = *(const int *)sqlite3_user_data(ctx) < 0;
    for (int64_t i = 0; i < a.n; i++)
        out[i] = sub ? a.f[i] - b.f[i] : a.f[i] + b.f[i];
    int type = a.type == BN_VEC_F16 && b.type == BN_VEC_F16 ? BN_VEC_F16 : BN_VEC_F32;
    int64_t n = a.n;
    vec_keep(ctx, 0, &a);
    vec_keep(ctx, 1, &b);
    bn_vec_result(ctx, out, n, type, 1);
}

/* ---------------------------------------------------------------------------
 * Registration
 * ------------------------------------------------------------------------- */

static const int type_f32 = BN_VEC_F32, type_f16 = BN_VEC_F16, metric_l2 = BN_VEC_L2,
                 metric_l1 = BN_VEC_L1, metric_cosine = BN_VEC_COSINE, metric_dot = BN_VEC_DOT,
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
    int rc = bn_vec_avg_register(db, flags);
    if (rc == SQLITE_OK)
        rc = bn_vec_each_register(db);
    if (rc == SQLITE_OK)
        rc = bn_vec_knn_register(db);
    return rc;
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
