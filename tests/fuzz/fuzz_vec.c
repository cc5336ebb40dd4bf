/*
 * fuzz_vec.c: libFuzzer harness for the vector SQL functions (common/vec*.c):
 * how they read BLOBs (float32, float16, tagged or not, any length) and JSON
 * text, one vector or two, and how vec_knn reads a feature set's stored
 * BLOBs and its query.
 *
 * Input: byte 0 chooses how the two vectors are bound (BLOB or text each) and
 * the stored feature set's dtype; bytes 1-2 the slice bounds and dimension;
 * byte 3 where the rest splits into vector A and vector B. Every statement
 * below runs on A and B; any SQL error is fine, a crash or a sanitizer report
 * is not. The database is an in-memory one with the three tables vec_knn
 * reads (images, featuresets, vectors), made once.
 *
 * Then results are checked, not only survival:
 * - round trips of A when it is a finite float32 vector: vec_f32(vec_to_json(A))
 *   = A to the six decimals vec_to_json prints (|error| <= 5e-7 + |a| 2^-23),
 *   vec_f32(vec_f32(A)) = vec_f32(A) byte for byte;
 * - distance(A, A) = 0 for l2 and l1, cosine 0 (NULL for a zero vector),
 *   vec_dot(A, A) >= 0;
 * - vec_knn against a brute-force sort computed here: a second feature set
 *   of up to 6 vectors (plus an image sharing the first one's vector) and two
 *   queries made from the input's bytes as multiples of 1/16 (exact in float:
 *   many ties and zero vectors), k and the metric from the input, asked in
 *   one join (so the in-memory copy of the set is used from the second
 *   query on, and must have been dropped since the last input changed the
 *   vectors): as many rows as qualify up to k, distances non-decreasing,
 *   ties in path order, each distance the brute-force one for its path and
 *   the i-th the i-th smallest (1e-9 relative: both sum in double).
 */
#include "fuzz.h"
#include "vec.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>

static const char *const statements[] = {
    "SELECT vec_length(?1)",
    "SELECT vec_type(?1)",
    "SELECT vec_to_json(?1)",
    "SELECT vec_f32(?1)",
    "SELECT vec_f16(?1)",
    "SELECT vec_f32(?1, 'f16')",
    "SELECT vec_f16(?1, 'f32')",
    "SELECT vec_to_json(vec_f16(?1))",
    "SELECT vec_normalize(?1)",
    "SELECT vec_normalize(vec_f16(?1))",
    "SELECT vec_slice(?1, ?3, ?4)",
    "SELECT vec_slice(vec_f16(?1), ?3, ?4)",
    "SELECT vec_distance_l2(?1, ?2)",
    "SELECT vec_distance_l1(?1, ?2)",
    "SELECT vec_distance_cosine(?1, ?2)",
    "SELECT vec_dot(?1, ?2)",
    "SELECT vec_add(?1, ?2)",
    "SELECT vec_sub(?1, ?2)",
    "SELECT vec_distance_l2(vec_f16(?1), vec_f16(?2))",
    "SELECT vec_distance_cosine(vec_f16(?1), ?2)",
    "SELECT vec_add(vec_f16(?1), vec_f16(?2))",
    "SELECT vec_to_json(vec_avg(v)) FROM (SELECT ?1 AS v UNION ALL SELECT ?2 UNION ALL SELECT ?1)",
    "SELECT vec_avg(v) OVER (ROWS 1 PRECEDING) FROM"
    " (SELECT ?1 AS v UNION ALL SELECT ?2 UNION ALL SELECT ?1)",
    "SELECT vec_avg(vec_f16(v)) FROM (SELECT ?1 AS v UNION ALL SELECT ?2)",
    /* vec_knn over a feature set whose dim and dtype come from the input,
     * holding B (and A) as stored vectors. */
    "UPDATE featuresets SET dim = ?5, dtype = ?6",
    "UPDATE vectors SET vector = ?2 WHERE sha256 = 'b'",
    "UPDATE vectors SET vector = ?1 WHERE sha256 = 'a'",
    "SELECT path, distance FROM vec_knn(?1, 3, 'fs')",
    "SELECT path, distance FROM vec_knn(?2, 2, 'fs', 'l2') WHERE split = 'train'",
    "SELECT path, distance FROM vec_knn(?1, 1, 1, 'dot') WHERE path != 'a.jpg'",
    "SELECT e.path, k.path FROM images e JOIN vectors v USING (sha256),"
    " vec_knn(v.vector, 2, 'fs', 'l1') k",
};
enum { NSTATEMENTS = sizeof statements / sizeof *statements };

static sqlite3 *db;
static sqlite3_stmt *st[NSTATEMENTS];

static void setup(void) {
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || bn_vec_register(db) != SQLITE_OK)
        abort();
    const char *schema =
        "CREATE TABLE images (path TEXT, label TEXT, split TEXT, sha256 TEXT);"
        "CREATE TABLE featuresets (id INTEGER PRIMARY KEY, name TEXT, dim INTEGER, dtype TEXT);"
        "CREATE TABLE vectors (featureset INTEGER, sha256 TEXT, vector BLOB);"
        "INSERT INTO images VALUES ('a.jpg', 'cat', 'train', 'a'), ('b.jpg', 'dog', NULL, 'b'),"
        " ('c.jpg', 'dog', 'train', 'b');"
        "INSERT INTO featuresets VALUES (1, 'fs', 4, 'f32');"
        "INSERT INTO vectors (featureset, sha256, vector) VALUES (1, 'a', "
        "x'0000803f000000400000404000008040'),"
        " (1, 'b', x'0000803f000000000000000000000000');"
        /* The brute-force check's feature set: images k0..k5, kdup sharing
         * k0's vector, and the queries. */
        "INSERT INTO featuresets VALUES (2, 'k', 1, 'f32');"
        "INSERT INTO images VALUES ('k0.jpg', 'cat', 'train', 'k0'), ('k1.jpg', 'dog', 'train', "
        "'k1'),"
        " ('k2.jpg', 'cat', 'train', 'k2'), ('k3.jpg', 'dog', 'train', 'k3'),"
        " ('k4.jpg', 'cat', 'train', 'k4'), ('k5.jpg', 'dog', 'train', 'k5'),"
        " ('kdup.jpg', 'cat', 'train', 'k0');"
        "CREATE TABLE kq (id INTEGER PRIMARY KEY, v BLOB);";
    if (sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
        abort();
    for (int i = 0; i < NSTATEMENTS; i++)
        if (sqlite3_prepare_v2(db, statements[i], -1, &st[i], NULL) != SQLITE_OK) {
            fprintf(stderr, "fuzz_vec: %s: %s\n", statements[i], sqlite3_errmsg(db));
            abort();
        }
}

static void bind_vec(sqlite3_stmt *s, int i, const uint8_t *p, size_t n, int as_text) {
    if (as_text)
        sqlite3_bind_text(s, i, (const char *)p, (int)n, SQLITE_STATIC);
    else
        sqlite3_bind_blob(s, i, p, (int)n, SQLITE_STATIC);
}

/* ---- result checks ------------------------------------------------------ */

static sqlite3_stmt *prep(const char *sql) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "fuzz_vec: %s: %s\n", sql, sqlite3_errmsg(db));
        abort();
    }
    return s;
}

/* Round trips and distance(A, A) of A (bound as mode says), when it reads
 * as a finite float32 vector. */
static void check_round_trips(const uint8_t *a, size_t na, int as_text) {
    static sqlite3_stmt *f32, *rt;
    if (!f32) {
        f32 = prep("SELECT vec_f32(?1), vec_f32(vec_f32(?1))");
        rt = prep("SELECT vec_f32(vec_to_json(?1)), vec_distance_l2(?1, ?1),"
                  " vec_distance_l1(?1, ?1), vec_distance_cosine(?1, ?1), vec_dot(?1, ?1)");
    }
    bind_vec(f32, 1, a, na, as_text);
    if (sqlite3_step(f32) == SQLITE_ROW && sqlite3_column_type(f32, 0) == SQLITE_BLOB) {
        int bytes = sqlite3_column_bytes(f32, 0);
        const float *v = sqlite3_column_blob(f32, 0);
        if (bytes % 4 || sqlite3_column_bytes(f32, 1) != bytes ||
            memcmp(sqlite3_column_blob(f32, 1), v, (size_t)bytes) != 0)
            abort();
        int n = bytes / 4, finite = 1, zero = 1;
        for (int i = 0; i < n; i++) {
            finite &= isfinite(v[i]) != 0;
            zero &= v[i] == 0;
        }
        if (finite && n > 0) {
            bind_vec(rt, 1, (const uint8_t *)v, (size_t)bytes, 0);
            if (sqlite3_step(rt) != SQLITE_ROW || sqlite3_column_bytes(rt, 0) != bytes)
                abort();
            const float *back = sqlite3_column_blob(rt, 0);
            for (int i = 0; i < n; i++)
                if (!(fabs((double)back[i] - v[i]) <= 5e-7 + fabs(v[i]) * 0x1p-23))
                    abort();
            if (sqlite3_column_double(rt, 1) != 0 || sqlite3_column_double(rt, 2) != 0)
                abort();
            if (zero ? sqlite3_column_type(rt, 3) != SQLITE_NULL
                     : !(fabs(sqlite3_column_double(rt, 3)) <= 1e-12))
                abort();
            if (!(sqlite3_column_double(rt, 4) >= 0))
                abort();
            sqlite3_reset(rt);
        }
    }
    sqlite3_reset(f32);
}

enum { KNN_N = 6, KNN_Q = 2, KNN_MAXDIM = 8 };

/* The brute-force distance of metric m, in double; NaN when undefined. */
static double brute_distance(const char *m, const float *q, const float *v, int d) {
    double dot = 0, l1 = 0, l2 = 0, nq = 0, nv = 0;
    for (int j = 0; j < d; j++) {
        dot += (double)q[j] * v[j];
        l1 += fabs((double)q[j] - v[j]);
        l2 += ((double)q[j] - v[j]) * ((double)q[j] - v[j]);
        nq += (double)q[j] * q[j];
        nv += (double)v[j] * v[j];
    }
    if (strcmp(m, "l2") == 0)
        return sqrt(l2);
    if (strcmp(m, "l1") == 0)
        return l1;
    if (strcmp(m, "dot") == 0)
        return -dot;
    if (nq == 0 || nv == 0)
        return NAN;
    return fmin(2, fmax(0, 1 - dot / (sqrt(nq) * sqrt(nv))));
}

typedef struct {
    char path[16];
    double d;
} knn_row;

static int knn_row_cmp(const void *pa, const void *pb) {
    const knn_row *a = pa, *b = pb;
    if (a->d != b->d)
        return a->d < b->d ? -1 : 1;
    return strcmp(a->path, b->path);
}

static int near(double a, double b) {
    return fabs(a - b) <= 1e-9 * (1 + fabs(b));
}

static void check_knn(const uint8_t *data, size_t size) {
    static sqlite3_stmt *del, *ins, *dim, *qdel, *qins, *knn;
    if (!del) {
        del = prep("DELETE FROM vectors WHERE featureset = 2");
        ins = prep("INSERT INTO vectors (featureset, sha256, vector) VALUES (2, 'k' || ?1, ?2)");
        dim = prep("UPDATE featuresets SET dim = ?1, dtype = 'f32' WHERE id = 2");
        qdel = prep("DELETE FROM kq");
        qins = prep("INSERT INTO kq VALUES (?1, ?2)");
        knn = prep("SELECT q.id, k.path, k.distance FROM kq q, vec_knn(q.v, ?1, 'k', ?2) k");
    }
    if (size < 5)
        return;
    int d = 1 + data[1] % KNN_MAXDIM, n = 1 + (data[0] >> 3) % KNN_N, k = 1 + data[3] % 8;
    float v[KNN_N + KNN_Q][KNN_MAXDIM];
    for (int i = 0; i < n + KNN_Q; i++)
        for (int j = 0; j < d; j++)
            v[i][j] = (float)(int8_t)data[4 + (size_t)(i * d + j) % (size - 4)] / 16;
    sqlite3_step(del);
    sqlite3_reset(del);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int(ins, 1, i);
        sqlite3_bind_blob(ins, 2, v[i], d * 4, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            abort();
        sqlite3_reset(ins);
    }
    sqlite3_bind_int(dim, 1, d);
    sqlite3_step(dim);
    sqlite3_reset(dim);
    sqlite3_step(qdel);
    sqlite3_reset(qdel);
    for (int i = 0; i < KNN_Q; i++) {
        sqlite3_bind_int(qins, 1, i);
        sqlite3_bind_blob(qins, 2, v[n + i], d * 4, SQLITE_STATIC);
        if (sqlite3_step(qins) != SQLITE_DONE)
            abort();
        sqlite3_reset(qins);
    }
    /* One metric per input, chosen by it: all four cost 4x the executions. */
    static const char *const metrics[] = {"cosine", "l2", "l1", "dot"};
    for (int m = data[2] >> 6; m == data[2] >> 6; m++) {
        /* Brute force: every image with a vector (kdup shares k0's). */
        knn_row want[KNN_Q][KNN_N + 1];
        int nwant[KNN_Q];
        for (int qi = 0; qi < KNN_Q; qi++) {
            nwant[qi] = 0;
            for (int i = 0; i <= n; i++) {
                knn_row r;
                snprintf(r.path, sizeof r.path, i < n ? "k%d.jpg" : "kdup.jpg", i);
                r.d = brute_distance(metrics[m], v[n + qi], v[i < n ? i : 0], d);
                if (!isnan(r.d))
                    want[qi][nwant[qi]++] = r;
            }
            qsort(want[qi], (size_t)nwant[qi], sizeof **want, knn_row_cmp);
        }
        sqlite3_bind_int(knn, 1, k);
        sqlite3_bind_text(knn, 2, metrics[m], -1, SQLITE_STATIC);
        int got[KNN_Q] = {0};
        knn_row prev = {"", 0};
        int rc;
        while ((rc = sqlite3_step(knn)) == SQLITE_ROW) {
            int qi = sqlite3_column_int(knn, 0), i = got[qi]++;
            knn_row r;
            snprintf(r.path, sizeof r.path, "%s", (const char *)sqlite3_column_text(knn, 1));
            r.d = sqlite3_column_double(knn, 2);
            if (qi < 0 || qi >= KNN_Q || i >= k || i >= nwant[qi] || !near(r.d, want[qi][i].d))
                abort(); /* not the i-th smallest distance */
            if (i > 0 && knn_row_cmp(&prev, &r) >= 0)
                abort(); /* not sorted, or a tie out of path order */
            int found = 0;
            for (int j = 0; j < nwant[qi]; j++)
                found |= strcmp(want[qi][j].path, r.path) == 0 && near(r.d, want[qi][j].d);
            if (!found)
                abort(); /* not that image's distance */
            prev = r;
        }
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "fuzz_vec: vec_knn: %s\n", sqlite3_errmsg(db));
            abort();
        }
        for (int qi = 0; qi < KNN_Q; qi++)
            if (got[qi] != (k < nwant[qi] ? k : nwant[qi]))
                abort(); /* fewer rows than qualify */
        sqlite3_reset(knn);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!db)
        setup();
    if (size < 4 || size > 1 << 16)
        return 0;
    int mode = data[0];
    int lo = (int8_t)data[1], hi = (int8_t)data[2];
    size_t split = 4 + (size - 4) * data[3] / 255;
    const uint8_t *a = data + 4, *b = data + split;
    size_t na = split - 4, nb = size - split;
    int dim = data[2] & 0x3f; /* 0..63: also zero and mismatched dimensions */
    for (int i = 0; i < NSTATEMENTS; i++) {
        sqlite3_stmt *s = st[i];
        int np = sqlite3_bind_parameter_count(s);
        if (np >= 1)
            bind_vec(s, 1, a, na, mode & 1);
        if (np >= 2)
            bind_vec(s, 2, b, nb, mode & 2);
        if (np >= 4) {
            sqlite3_bind_int(s, 3, lo);
            sqlite3_bind_int(s, 4, hi);
        }
        if (np >= 6) {
            sqlite3_bind_int(s, 5, dim);
            sqlite3_bind_text(s, 6, mode & 4 ? "f16" : "f32", -1, SQLITE_STATIC);
        }
        while (sqlite3_step(s) == SQLITE_ROW) {
            /* Read every column, as a client would. */
            for (int c = 0; c < sqlite3_column_count(s); c++) {
                sqlite3_column_blob(s, c);
                sqlite3_column_bytes(s, c);
            }
        }
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    check_round_trips(a, na, mode & 1);
    check_knn(data, size);
    return 0;
}
