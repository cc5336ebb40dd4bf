/*
 * fuzz_vec.c: libFuzzer harness for the vector SQL functions (common/vec.c):
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
 */
#include "fuzz.h"
#include "vec.h"

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
        " (1, 'b', x'0000803f000000000000000000000000');";
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
    return 0;
}
