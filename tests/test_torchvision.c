/*
 * test_torchvision.c: `--resize crop --preprocess torch` against torchvision.
 *
 * tests/data/torchvision/<name>.crop64.torch.f32 are the input tensors
 * torchvision's evaluation pipeline (Resize(64), CenterCrop(64), ToTensor,
 * Normalize with the ImageNet mean/std) makes of three photos of ../shared: a
 * portrait, a small landscape that is enlarged, a landscape of odd width.
 * make_refs.py beside them wrote them once (Debian's python3-torchvision).
 *
 * - bn_image_decode of each JPEG at size 64, crop, torch: every value equal
 *   to torchvision's, bit for bit (observed: max abs diff 0; the same
 *   libjpeg decode, PIL's bilinear filter in resample.c, and the same float32
 *   operations x / 255 - mean, / std). One pixel level off would be 0.017.
 * - bottleneck-extract with those options (--conv direct, block5_pool, no
 *   pooling, the three in one partial batch of 4) stores what the direct
 *   network computes here from torchvision's tensors (a batch of 3), bit for
 *   bit: from 0.2.0 a vector does not depend on its batch
 *   (docs/PERFORMANCE.md, Determinism). (Before that, the direct engine's
 *   sums differed in the last bits with the batch size: rel L2 up to 6.7e-7.)
 */
#include "check.h"
#include "cpu.h"
#include "image.h"
#include "support.h"
#include "vgg16.h"
#include "weights.h"

#include <sqlite3.h>

#define SIZE 64
#define NPHOTO 3
static const char *const photos[NPHOTO][2] = {
    {"cat", "cat.10643"}, /* 268x440 */
    {"dog", "dog.630"},   /* 73x50: enlarged */
    {"cat", "cat.4738"},  /* 499x375 */
};
enum { NVAL = SIZE * SIZE * 3 };

static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The stored vector of path (the only feature set), or NULL. */
static float *stored(sqlite3 *db, const char *path, int dim) {
    sqlite3_stmt *q;
    float *v = NULL;
    if (sqlite3_prepare_v2(db, "SELECT vector FROM embeddings WHERE path = ?1", -1, &q, NULL))
        return NULL;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == dim * 4) {
        v = malloc((size_t)dim * 4);
        memcpy(v, sqlite3_column_blob(q, 0), (size_t)dim * 4);
    }
    sqlite3_finalize(q);
    return v;
}

int main(int argc, char **argv) {
    /* The OpenBLAS kernels the extractor runs with (it re-executes itself
     * for them, cpu.h): the direct engine's bytes depend on the kernel set,
     * and part 2 compares this process's output with the extractor's bit
     * for bit. (On an Intel Xeon OpenBLAS 0.3.21 loads Prescott's generic
     * kernels; the extractor asks for SkylakeX's.) */
    (void)argc;
    bn_cpu_blas_use_best_kernels(argv);
    const char *src = getenv("BN_SOURCE_DIR");
    CHECK(src != NULL);
    if (!src)
        return check_done();
    bn_error err = {0};
    CHECK_INT(bn_image_init("test_torchvision", &err), BN_OK);
    const char *dir = support_mkdtemp("bn-torchvision");
    CHECK(dir != NULL);
    if (!dir)
        return check_done();

    /* 1. The preprocessed tensors. */
    float *ref = malloc(sizeof(float) * NVAL * NPHOTO);
    char path[4096], cmd[16384];
    double worst = 0;
    for (int i = 0; i < NPHOTO; i++) {
        snprintf(path, sizeof path, "%s/tests/data/torchvision/%s.crop%d.torch.f32", src,
                 photos[i][1], SIZE);
        float *r = support_read_f32(path, NVAL);
        CHECK_MSG(r != NULL, "%s: cannot read %d floats", path, NVAL);
        if (!r)
            return check_done();
        memcpy(ref + (size_t)i * NVAL, r, sizeof(float) * NVAL);
        free(r);

        snprintf(path, sizeof path, "data/catsdogs/train/%s/%s.jpg", photos[i][0], photos[i][1]);
        size_t len;
        unsigned char *jpg = read_file(shared_path(path), &len);
        CHECK_MSG(jpg != NULL, "cannot read %s", shared_path(path));
        if (!jpg)
            return check_done();
        float t[NVAL];
        bn_image_opts o = {
            .size = SIZE, .resize = BN_RESIZE_CROP, .preprocess = BN_PREPROCESS_TORCH};
        CHECK_INT(bn_image_decode(jpg, len, path, &o, t, NULL, &err), BN_OK);
        double maxd = 0;
        int at = 0;
        for (int k = 0; k < NVAL; k++) {
            double d = fabs((double)t[k] - ref[(size_t)i * NVAL + k]);
            if (d > maxd)
                maxd = d, at = k;
        }
        printf("%s crop %d torch vs torchvision: max abs diff %.2g (at y %d x %d c %d)\n",
               photos[i][1], SIZE, maxd, at / 3 / SIZE, at / 3 % SIZE, at % 3);
        CHECK_MSG(maxd == 0, "%s: max abs diff %.3g from torchvision", photos[i][1], maxd);
        worst = maxd > worst ? maxd : worst;
        free(jpg);
        /* The copy extract reads. */
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/ds/%s' && cp '%s' '%s/ds/%s/'", dir, photos[i][0],
                 shared_path(path), dir, photos[i][0]);
        CHECK_INT(system(cmd), 0);
    }
    printf("preprocessing, %d photos: worst max abs diff %.2g\n", NPHOTO, worst);

    /* 2. Through the program: the stored vectors are the network's output
     * on torchvision's tensors (direct engine on both sides). */
    snprintf(cmd, sizeof cmd,
             "'%s' --quiet --weights '%s' --db '%s/t.db' --size %d --resize crop --preprocess torch"
             " --conv direct --batch 4 --pooling none '%s/ds'",
             getenv("BN_EXTRACT"), shared_path("models/vgg16_random_notop.h5"), dir, SIZE, dir);
    CHECK_INT(system(cmd), 0);
    bn_vgg16_weights w;
    CHECK_INT(bn_weights_load(&w, shared_path("models/vgg16_random_notop.h5"), &err), BN_OK);
    bn_vgg16 *net = NULL;
    CHECK_INT(bn_vgg16_create(&net, &w, BN_CONV_DIRECT, SIZE, NPHOTO, BN_LAYER_BLOCK5_POOL, &err),
              BN_OK);
    bn_weights_free(&w);
    int dim = bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, SIZE);
    CHECK_INT(dim, 2 * 2 * 512);
    float *out = malloc(sizeof(float) * (size_t)dim * NPHOTO);
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/t.db", dir);
    if (net &&
        bn_vgg16_forward(net, ref, NPHOTO, BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, out, &err) ==
            BN_OK &&
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        for (int i = 0; i < NPHOTO; i++) {
            snprintf(path, sizeof path, "%s/%s.jpg", photos[i][0], photos[i][1]);
            float *v = stored(db, path, dim);
            CHECK_MSG(v != NULL, "%s: no vector of %d floats stored", path, dim);
            if (!v)
                continue;
            double e = support_rel_l2(v, out + (size_t)i * dim, (size_t)dim);
            printf("%s extract --resize crop --preprocess torch vs the network on torchvision's "
                   "tensor: rel L2 %.2g\n",
                   photos[i][1], e);
            CHECK_MSG(memcmp(v, out + (size_t)i * dim, (size_t)dim * 4) == 0,
                      "%s: not bit for bit (rel L2 %.3g)", path, e);
            free(v);
        }
    } else {
        CHECK_MSG(0, "network or database: %s", err.msg);
    }
    sqlite3_close(db);
    bn_vgg16_free(net);
    free(out);
    free(ref);
    support_remove_tree(dir);
    bn_image_shutdown();
    return check_done();
}
