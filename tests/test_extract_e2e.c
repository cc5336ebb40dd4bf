/*
 * test_extract_e2e: bottleneck-extract, end to end, against the independent
 * PyTorch reference in ../shared/reference. The <name>.224.png files hold the
 * exact 224x224 pixels the reference was fed, so decoding them needs no
 * resize and the stored vectors must match the reference outputs:
 *   --layer block5_pool --pooling none  vs <name>.block5_pool.f32
 *   --layer block5_pool --pooling avg   vs the mean of that over 7x7
 *   --layer block3_pool --pooling max   vs the max of <name>.block3_pool.f32 over 28x28
 * Tolerance: relative L2 error 1e-5 (the bound).
 */
#include "check.h"

#include <sqlite3.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *names[] = {"cat.1000",  "cat.10005", "cat.10014",
                              "dog.10000", "dog.10004", "dog.10006"};
#define NCASES 6

static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *p = malloc(n * sizeof *p);
    if (p && fread(p, sizeof *p, n, f) != n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

static double rel_l2(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int run_extract(const char *dir, const char *db, const char *extra) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' --quiet --weights '%s' --db '%s' %s '%s'", getenv("BN_EXTRACT"),
             shared_path("models/vgg16_random_notop.h5"), db, extra, dir);
    return system(cmd);
}

/* The stored vector of one path in the feature set with this pooling/layer. */
static float *stored(sqlite3 *db, const char *path, const char *layer, const char *pooling,
                     int *dim) {
    sqlite3_stmt *q;
    const char *sql = "SELECT v.vector, f.dim FROM images i JOIN vectors v ON v.sha256 = i.sha256"
                      " JOIN featuresets f ON f.id = v.featureset"
                      " WHERE i.path = ?1 AND f.layer = ?2 AND f.pooling = ?3";
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, layer, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, pooling, -1, SQLITE_STATIC);
    float *v = NULL;
    if (sqlite3_step(q) == SQLITE_ROW) {
        *dim = sqlite3_column_int(q, 1);
        int bytes = sqlite3_column_bytes(q, 0);
        if (bytes == *dim * 4) {
            v = malloc((size_t)bytes);
            memcpy(v, sqlite3_column_blob(q, 0), (size_t)bytes);
        }
    }
    sqlite3_finalize(q);
    return v;
}

int main(void) {
    char tmpl[] = "/tmp/bn-e2e.XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    char path[1024], db[1024], cmd[16384];
    for (int i = 0; i < NCASES; i++) {
        const char *label = names[i][0] == 'c' ? "cat" : "dog";
        snprintf(path, sizeof path, "%s/ds/%s", dir, label);
        /* copy <name>.224.png as <name>.png */
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/reference/%s.224.png' '%s/%s.png'", path,
                 getenv("BN_SHARED"), names[i], path, names[i]);
        CHECK_INT(system(cmd), 0);
    }
    snprintf(path, sizeof path, "%s/ds", dir);
    snprintf(db, sizeof db, "%s/e2e.db", dir);
    /* The default options first (--batch 8: the six photos are one partial batch,
     * which crashed 0.1.0), then other batch sizes and outputs. */
    CHECK_INT(run_extract(path, db, ""), 0);
    CHECK_INT(run_extract(path, db, "--batch 6 --pooling avg"), 0);
    CHECK_INT(run_extract(path, db, "--batch 4 --layer block3_pool --pooling max"), 0);

    sqlite3 *h;
    CHECK_INT(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    double worst = 0;
    for (int i = 0; i < NCASES; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s.png", names[i][0] == 'c' ? "cat" : "dog", names[i]);
        snprintf(path, sizeof path, "reference/%s.block5_pool.f32", names[i]);
        float *ref5 = read_f32(shared_path(path), 7 * 7 * 512);
        snprintf(path, sizeof path, "reference/%s.block3_pool.f32", names[i]);
        float *ref3 = read_f32(shared_path(path), 28 * 28 * 256);
        CHECK(ref5 && ref3);
        if (!ref5 || !ref3)
            break;

        int dim = 0;
        float *flat = stored(h, rel, "block5_pool", "none", &dim);
        CHECK_MSG(flat != NULL, "%s: no flat vector stored", rel);
        CHECK_INT(dim, 25088);
        if (flat) {
            double e = rel_l2(flat, ref5, 25088);
            printf("%s block5_pool flatten: rel L2 %.3g\n", names[i], e);
            CHECK_MSG(e <= 1e-5, "%s: block5_pool rel L2 %.3g > 1e-5", names[i], e);
            worst = e > worst ? e : worst;
        }

        float avg_ref[512], max_ref[256];
        for (int c = 0; c < 512; c++) {
            double s = 0;
            for (int p = 0; p < 49; p++)
                s += ref5[p * 512 + c];
            avg_ref[c] = (float)(s / 49);
        }
        for (int c = 0; c < 256; c++) {
            float m = ref3[c];
            for (int p = 1; p < 28 * 28; p++)
                m = ref3[p * 256 + c] > m ? ref3[p * 256 + c] : m;
            max_ref[c] = m;
        }
        float *avg = stored(h, rel, "block5_pool", "avg", &dim);
        CHECK(avg != NULL && dim == 512);
        if (avg) {
            double e = rel_l2(avg, avg_ref, 512);
            printf("%s block5_pool avg: rel L2 %.3g\n", names[i], e);
            CHECK_MSG(e <= 1e-5, "%s: avg pooled rel L2 %.3g", names[i], e);
        }
        float *mx = stored(h, rel, "block3_pool", "max", &dim);
        CHECK(mx != NULL && dim == 256);
        if (mx) {
            double e = rel_l2(mx, max_ref, 256);
            printf("%s block3_pool max: rel L2 %.3g\n", names[i], e);
            CHECK_MSG(e <= 1e-5, "%s: block3 max pooled rel L2 %.3g", names[i], e);
        }
        free(flat);
        free(avg);
        free(mx);
        free(ref5);
        free(ref3);
    }
    printf("worst block5_pool rel L2: %.3g\n", worst);
    sqlite3_close(h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
    return check_done();
}
