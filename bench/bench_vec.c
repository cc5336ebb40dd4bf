/*
 * bench_vec: top-10 cosine search over stored vectors, bottleneck against
 * sqlite-vec, same machine, same run (docs/PERFORMANCE.md, "Search").
 *
 * Over N random float32 vectors (default 10,000) of each dimension asked
 * (default 1,024 and 25,088: GoogLeNet pooled, VGG16 flattened), in a
 * database file with the project schema, as a user's would be:
 *
 *   vec_knn, fresh connection   SELECT path, distance FROM vec_knn(?, 10, ?) on
 *                               a connection opened for that query alone (the
 *                               first query a program or a shell makes)
 *   vec_knn, repeated           the same on one connection, query after query
 *                               (from the second on, vec_knn ranks from memory)
 *   vec_knn, rows, fresh        before vec_knn_pack: reading the vectors table
 *   scalar (bottleneck)         ORDER BY vec_distance_cosine(vector, ?) LIMIT 10
 *   scalar (sqlite-vec)         the same with sqlite-vec's function
 *   vec0, fresh connection      sqlite-vec's vec0 table, WHERE embedding MATCH ?
 *                               AND k = 10 (vec0 takes at most 8,192 dims)
 *   vec0, repeated              the same on one connection
 *
 * After one warm-up each, the forms run round-robin --reps times (so that
 * each sees the same machine); prints the median and best, GB/s of vectors
 * scanned, the ratios to vec0 and whether every form returned the reference
 * top-10. Then Q queries in one statement (a join), and the peak RSS.
 *
 *   bench_vec [--n N] [--dims 1024,25088] [--reps R] [--dir DIR]
 *             [--sqlite-vec PATH/vec0.so | none]  (default: $BN_SQLITE_VEC,
 *             then /tmp/vecref/node_modules/sqlite-vec-linux-x64/vec0.so)
 *             [--no-scalar] [--keep]  (keep the database files)
 */
#include "vec.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

extern const char *const bn_schema_migrations[];
extern const int bn_schema_version;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(sqlite3 *db, const char *what) {
    fprintf(stderr, "bench_vec: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench_vec: %s: %s\n", sql, err);
        exit(1);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (float)((rng * 2685821657736338717ull) >> 40) / (float)(1 << 23) - 1.0f;
}

/* A database of n random vectors of dim floats, feature set 'bench'. */
static void make_db(const char *path, int n, int dim) {
    sqlite3 *db;
    unlink(path);
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, path);
    exec(db, "PRAGMA journal_mode = WAL");
    exec(db, "BEGIN");
    for (int i = 0; i < bn_schema_version; i++)
        exec(db, bn_schema_migrations[i]);
    char sql[256];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", bn_schema_version);
    exec(db, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO featuresets(name, source, model, dim, dtype) "
             "VALUES ('bench', 'import', 'random', %d, 'f32')",
             dim);
    exec(db, sql);
    sqlite3_stmt *img, *vec;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO images(path, label, split, sha256) "
                           "VALUES (?1, ?2, 'train', ?3)",
                           -1, &img, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO vectors(featureset, sha256, vector) VALUES (1, ?1, ?2)",
                           -1, &vec, NULL) != SQLITE_OK)
        die(db, "prepare");
    float *v = malloc(sizeof(float) * (size_t)dim);
    for (int i = 0; i < n; i++) {
        char p[32], sha[65];
        snprintf(p, sizeof p, "img/%06d.jpg", i);
        snprintf(sha, sizeof sha, "%064x", i);
        for (int d = 0; d < dim; d++)
            v[d] = frand();
        sqlite3_bind_text(img, 1, p, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(img, 2, i % 2 ? "dog" : "cat", -1, SQLITE_STATIC);
        sqlite3_bind_text(img, 3, sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(vec, 1, sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(vec, 2, v, dim * 4, SQLITE_STATIC);
        if (sqlite3_step(img) != SQLITE_DONE || sqlite3_step(vec) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(img);
        sqlite3_reset(vec);
    }
    free(v);
    sqlite3_finalize(img);
    sqlite3_finalize(vec);
    exec(db, "COMMIT");
    exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
}

/* Run sql (binding the query BLOB as ?1) and return the seconds taken; the
 * first column of the rows is concatenated into out (the ten paths). */
static double timed(sqlite3 *db, const char *sql, const float *q, int dim, char *out, size_t cap) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(db, sql);
    sqlite3_bind_blob(st, 1, q, dim * 4, SQLITE_STATIC);
    double t0 = now();
    size_t len = 0;
    out[0] = '\0';
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 0);
        len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, "%s ", p ? p : "?");
    }
    double t = now() - t0;
    if (rc != SQLITE_DONE)
        die(db, sql);
    sqlite3_finalize(st);
    return t;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A form of the query, timed round-robin with the others so that every form
 * sees the same machine (other processes, the OS writing back the file).
 * With fresh, each run opens its own connection (path, extension ext). */
typedef struct {
    const char *name;
    sqlite3 *db;
    const char *sql;
    int fresh;
    const char *path, *ext;
    double *t;
    int same; /* returned the reference top-10 every time */
    double med;
} form;

static const char *vec0_path; /* sqlite-vec's vec0.so, or NULL */

static sqlite3 *open_db(const char *path, const char *ext) {
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, path);
    if (!ext) {
        if (bn_vec_register(db) != SQLITE_OK)
            die(db, "bn_vec_register");
        return db;
    }
    char *err = NULL;
    sqlite3_enable_load_extension(db, 1);
    if (sqlite3_load_extension(db, ext, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench_vec: cannot load %s: %s\n", ext, err);
        exit(1);
    }
    return db;
}

static double run_form(form *f, const float *q, int dim, char *out, size_t cap) {
    if (!f->fresh)
        return timed(f->db, f->sql, q, dim, out, cap);
    sqlite3 *db = open_db(f->path, f->ext);
    double t = timed(db, f->sql, q, dim, out, cap);
    sqlite3_close(db);
    return t;
}

static void bench(form *f, int nf, const float *q, int dim, int n, int reps, const char *expect) {
    size_t cap = 4096;
    char *paths = malloc(cap);
    for (int i = 0; i < nf; i++) { /* warm-up */
        f[i].t = malloc(sizeof(double) * (size_t)reps);
        run_form(&f[i], q, dim, paths, cap);
        f[i].same = strcmp(expect, paths) == 0;
    }
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < nf; i++) {
            f[i].t[r] = run_form(&f[i], q, dim, paths, cap);
            f[i].same &= strcmp(expect, paths) == 0;
        }
    for (int i = 0; i < nf; i++) {
        qsort(f[i].t, (size_t)reps, sizeof *f[i].t, cmp_double);
        double med = f[i].t[reps / 2], gb = (double)n * dim * 4 / 1e9;
        f[i].med = med;
        printf("  %-28s median %8.2f ms   best %8.2f ms   %6.2f GB/s   %s\n", f[i].name, med * 1e3,
               f[i].t[0] * 1e3, gb / med, f[i].same ? "same top-10" : "DIFFERENT top-10");
        free(f[i].t);
    }
    fflush(stdout);
    free(paths);
}

static const form *find_form(const form *f, int nf, const char *name) {
    for (int i = 0; i < nf; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

int main(int argc, char **argv) {
    int n = 10000, reps = 5, keep = 0, scalar_forms = 1;
    const char *dims = "1024,25088", *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *vec0 = getenv("BN_SQLITE_VEC");
    if (!vec0 || !*vec0)
        vec0 = "/tmp/vecref/node_modules/sqlite-vec-linux-x64/vec0.so";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dims") == 0 && i + 1 < argc)
            dims = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--sqlite-vec") == 0 && i + 1 < argc)
            vec0 = argv[++i];
        else if (strcmp(argv[i], "--no-scalar") == 0)
            scalar_forms = 0;
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else {
            fprintf(stderr, "usage: bench_vec [--n N] [--dims D1,D2] [--reps R] [--dir DIR] "
                            "[--sqlite-vec PATH/vec0.so | none] [--no-scalar] [--keep]\n");
            return 2;
        }
    }
    if (n < 10 || reps < 1) {
        fprintf(stderr, "bench_vec: --n must be >= 10 and --reps >= 1\n");
        return 2;
    }
    int have_vec0 = strcmp(vec0, "none") != 0 && access(vec0, R_OK) == 0;
    vec0_path = have_vec0 ? vec0 : NULL;
    printf("bench_vec: top-10 cosine over %d random float32 vectors, SQLite %s, %d runs each, "
           "%ld CPUs\n",
           n, sqlite3_libversion(), reps, sysconf(_SC_NPROCESSORS_ONLN));
    printf("sqlite-vec: %s\n", have_vec0 ? vec0 : "not used (--sqlite-vec PATH to compare)");

    char *list = strdup(dims);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int dim = atoi(tok);
        if (dim <= 0) {
            fprintf(stderr, "bench_vec: bad dimension '%s'\n", tok);
            return 2;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/bench_vec_%d_%d.db", dir, (int)getpid(), dim);
        double t0 = now();
        make_db(path, n, dim);
        sync(); /* no write-back of the new file during the timings */
        printf("\n%d x %d (%.2f GB of vectors): database built in %.1f s\n", n, dim,
               (double)n * dim * 4 / 1e9, now() - t0);

        float *q = malloc(sizeof(float) * (size_t)dim);
        for (int d = 0; d < dim; d++)
            q[d] = frand();
        size_t cap = 4096;
        char *expect = malloc(cap), *paths = malloc(cap);
        static const char knn[] = "SELECT path, distance FROM vec_knn(?1, 10, 'bench')";
        static const char scalar[] = "SELECT path, vec_distance_cosine(vector, ?1) AS d FROM "
                                     "embeddings WHERE featureset = 'bench' ORDER BY d LIMIT 10";

        /* The reference top-10: the scalar SQL form. */
        sqlite3 *db = open_db(path, NULL), *vdb = NULL;
        timed(db, scalar, q, dim, expect, cap);

        /* Before packing: vec_knn reads the vectors table. */
        form rows = {"vec_knn rows, fresh conn.", NULL, knn, 1, path, NULL, NULL, 0, 0};
        bench(&rows, 1, q, dim, n, reps, expect);

        t0 = now();
        char *err = NULL;
        int64_t packed;
        if (bn_vec_knn_pack(db, "bench", &packed, &err) != SQLITE_OK) {
            fprintf(stderr, "bench_vec: %s\n", err);
            return 1;
        }
        exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        sync();
        printf("  (vec_knn_pack: %lld vectors in %.2f s)\n", (long long)packed, now() - t0);

        form f[8] = {
            {"vec_knn, fresh connection", NULL, knn, 1, path, NULL, NULL, 0, 0},
            {"vec_knn, repeated", db, knn, 0, NULL, NULL, NULL, 0, 0},
        };
        int nf = 2;
        if (scalar_forms)
            f[nf++] = (form){"scalar (bottleneck)", db, scalar, 0, NULL, NULL, NULL, 0, 0};
        char sql[512];
        /* sqlite-vec in connections of its own (same function names). */
        if (have_vec0) {
            vdb = open_db(path, vec0);
            if (scalar_forms)
                f[nf++] = (form){"scalar (sqlite-vec)", vdb, scalar, 0, NULL, NULL, NULL, 0, 0};
            snprintf(sql, sizeof sql,
                     "CREATE VIRTUAL TABLE vv USING vec0(embedding float[%d] "
                     "distance_metric=cosine)",
                     dim);
            if (sqlite3_exec(vdb, sql, NULL, NULL, &err) != SQLITE_OK) {
                printf("  %-28s n/a: %s\n", "vec0 (sqlite-vec)", err);
                sqlite3_free(err);
            } else {
                double t1 = now();
                exec(vdb, "INSERT INTO vv(rowid, embedding) SELECT i.id, v.vector "
                          "FROM images i JOIN vectors v ON v.sha256 = i.sha256");
                exec(vdb, "PRAGMA wal_checkpoint(TRUNCATE)");
                sync();
                printf("  (vec0 table filled in %.1f s)\n", now() - t1);
                static const char v0[] =
                    "SELECT i.path, k.distance FROM (SELECT rowid, distance FROM vv WHERE "
                    "embedding MATCH ?1 AND k = 10) k JOIN images i ON i.id = k.rowid "
                    "ORDER BY k.distance";
                f[nf++] = (form){"vec0, fresh connection", NULL, v0, 1, path, vec0, NULL, 0, 0};
                f[nf++] = (form){"vec0, repeated", vdb, v0, 0, NULL, NULL, NULL, 0, 0};
            }
        }
        bench(f, nf, q, dim, n, reps, expect);
        const form *kf = find_form(f, nf, "vec_knn, fresh connection"),
                   *kr = find_form(f, nf, "vec_knn, repeated"),
                   *vf = find_form(f, nf, "vec0, fresh connection"),
                   *vr = find_form(f, nf, "vec0, repeated");
        printf("  ratios: packed vs rows, fresh %.2fx", rows.med / kf->med);
        if (vf && vr)
            printf("; vec0 / vec_knn: fresh connection %.2fx, repeated %.2fx", vf->med / kf->med,
                   vr->med / kr->med);
        printf("\n");

        /* Many queries in one statement (a join): each of Q stored vectors'
         * top-10, ranked from memory from the second query on. */
        int nq = (double)n * dim * 4 <= 1024.0 * 1024 * 1024 ? 100 : 3;
        snprintf(sql, sizeof sql,
                 "SELECT q.path, k.path FROM (SELECT path, vector FROM embeddings WHERE "
                 "featureset = 'bench' ORDER BY path LIMIT %d) q, vec_knn(q.vector, 10, 'bench') k",
                 nq);
        sqlite3 *jdb = open_db(path, NULL);
        double tk = timed(jdb, sql, q, dim, paths, cap);
        sqlite3_close(jdb);
        printf("  %d queries in one join (fresh connection): vec_knn %.2f ms/query\n", nq,
               tk * 1e3 / nq);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("  peak RSS so far: %.0f MB (vectors: %.0f MB)\n", ru.ru_maxrss / 1024.0,
               (double)n * dim * 4 / 1e6);
        fflush(stdout);
        sqlite3_close(db);
        sqlite3_close(vdb);
        free(q);
        free(expect);
        free(paths);
        if (keep) {
            printf("  kept %s\n", path);
        } else {
            unlink(path);
            char side[4200];
            snprintf(side, sizeof side, "%s-wal", path);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", path);
            unlink(side);
        }
    }
    free(list);
    return 0;
}
