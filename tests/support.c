/*
 * support.c: helpers that several C tests share (see support.h). Nothing
 * here is a test: no CHECK, results go back to the caller.
 */
#include "support.h"

#include "cpu.h"
#include "verify.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

void support_seed(uint64_t seed) {
    rng_state = seed;
}

float support_rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* ---- convolution -------------------------------------------------------- */

void support_naive_conv(const float *in, const float *k, const float *bias, double *out,
                        double *absum, int n, int h, int w, int cin, int cout) {
    for (int b = 0; b < n; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int co = 0; co < cout; co++) {
                    double s = bias[co], a = fabs(bias[co]);
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, xx = x + kx - 1;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                continue;
                            const float *px = in + (((size_t)b * h + yy) * w + xx) * cin;
                            const float *kk = k + (size_t)(ky * 3 + kx) * cin * cout + co;
                            for (int ci = 0; ci < cin; ci++) {
                                double t = (double)px[ci] * kk[(size_t)ci * cout];
                                s += t;
                                a += fabs(t);
                            }
                        }
                    size_t o = (((size_t)b * h + y) * w + x) * cout + co;
                    out[o] = s > 0 ? s : 0;
                    if (absum)
                        absum[o] = a;
                }
}

void support_layer_make(support_layer *l, int n, int h, int w, int cin, int cout, int positive,
                        float offset) {
    *l = (support_layer){.nin = (size_t)n * h * w * cin, .nout = (size_t)n * h * w * cout};
    l->in = malloc(l->nin * sizeof *l->in);
    l->k = malloc((size_t)9 * cin * cout * sizeof *l->k);
    l->bias = malloc((size_t)cout * sizeof *l->bias);
    l->ref = malloc(l->nout * sizeof *l->ref);
    l->absum = malloc(l->nout * sizeof *l->absum);
    if (!l->in || !l->k || !l->bias || !l->ref || !l->absum) {
        fprintf(stderr, "support_layer_make: out of memory\n");
        exit(1);
    }
    float ks = sqrtf(2.0f / (9 * cin));
    for (size_t i = 0; i < l->nin; i++)
        l->in[i] = positive ? fabsf(support_rnd()) : support_rnd() + offset;
    for (size_t i = 0; i < (size_t)9 * cin * cout; i++)
        l->k[i] = support_rnd() * ks;
    for (int i = 0; i < cout; i++)
        l->bias[i] = 0.1f * support_rnd();
    support_naive_conv(l->in, l->k, l->bias, l->ref, l->absum, n, h, w, cin, cout);
}

void support_layer_free(support_layer *l) {
    free(l->in);
    free(l->k);
    free(l->bias);
    free(l->ref);
    free(l->absum);
    *l = (support_layer){0};
}

size_t support_layer_off(const support_layer *l, const float *out, double frac, double add,
                         size_t *first) {
    size_t bad = 0;
    *first = 0;
    for (size_t i = 0; i < l->nout; i++)
        if (!(fabs(out[i] - l->ref[i]) <= frac * l->absum[i] + add) && bad++ == 0)
            *first = i;
    return bad;
}

double support_rel_l2_exact(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

double support_layer_rel_l2(const support_layer *l, const float *out) {
    return support_rel_l2_exact(out, l->ref, l->nout);
}

void *support_ws_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 64) & ~(size_t)63);
}

void support_conv_forward(const bn_conv *c, const float *in, float *out, int n, int h, int w,
                          int pool) {
    void *ws =
        support_ws_alloc(pool ? bn_conv_workspace_pool(c, n, h, w) : bn_conv_workspace(c, n, h, w));
    if (pool)
        bn_conv_forward_pool(c, in, out, n, h, w, ws);
    else
        bn_conv_forward(c, in, out, n, h, w, ws);
    free(ws);
}

/* ---- float32 files and the reference photos ----------------------------- */

float *support_read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    float *p = malloc(n * sizeof *p);
    size_t got = fread(p, sizeof *p, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra) {
        free(p);
        return NULL;
    }
    return p;
}

double support_rel_l2(const float *a, const float *b, size_t n) {
    return bn_verify_rel_l2(a, b, n); /* the library's judge (verify.h) */
}

int support_conv_run(bn_conv_engine e, bn_precision p, int threads, const float *in, const float *k,
                     const float *bias, float *out, int n, int h, int w, int cin, int cout,
                     bn_error *err) {
    bn_cpu_set_threads(threads);
    bn_conv *c;
    if (bn_conv_create_precision(&c, e, p, cin, cout, k, bias, err))
        return -1;
    if (bn_conv_engine_of(c) != e || bn_conv_precision_of(c) != p) {
        bn_fail(err, BN_EINVAL, "%s %s %d->%d: the layer resolved to %s %s", bn_conv_engine_name(e),
                bn_precision_name(p), cin, cout, bn_conv_engine_name(bn_conv_engine_of(c)),
                bn_precision_name(bn_conv_precision_of(c)));
        bn_conv_free(c);
        return -1;
    }
    size_t nout = (size_t)n * h * w * cout;
    for (size_t i = 0; i < nout; i++)
        out[i] = NAN;
    support_conv_forward(c, in, out, n, h, w, 0);
    bn_conv_free(c);
    return 0;
}

bn_vgg16 *support_net(const bn_vgg16_weights *w, bn_conv_engine e, bn_precision p, int s,
                      int max_batch) {
    bn_vgg16 *net = NULL;
    bn_error err;
    if (bn_vgg16_create_precision(&net, w, e, p, s, max_batch, BN_LAYER_BLOCK5_POOL, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return net;
}

int support_net_batch(bn_vgg16 *net, const float *in, int nimg, int s, int first, int n, float *out,
                      bn_error *err) {
    size_t per = (size_t)s * s * 3;
    float *batch = malloc((size_t)n * per * sizeof *batch);
    if (!batch)
        return bn_fail(err, BN_ENOMEM, "out of memory for a batch of %d", n);
    for (int i = 0; i < n; i++)
        memcpy(batch + i * per, in + (size_t)((first + i) % nimg) * per, per * sizeof *batch);
    int rc = bn_vgg16_forward(net, batch, n, BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, out, err);
    free(batch);
    return rc;
}

float *support_smooth_images(int nimg, int s) {
    size_t per = (size_t)s * s * 3;
    float *in = malloc((size_t)nimg * per * sizeof *in);
    if (!in) {
        fprintf(stderr, "support_smooth_images: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < nimg; i++)
        for (size_t j = 0; j < per; j++)
            in[i * per + j] = 60.0f * sinf(0.05f * (float)(j / 3 % s) * (1 + i % 4)) +
                              20.0f * support_rnd() + (float)(j % 3) * 10.0f;
    return in;
}

double support_net_alone_vs_exact(const bn_vgg16_weights *w, bn_conv_engine e, bn_precision p,
                                  int s, const float *in, int nimg, float *alone, float *exact,
                                  char engine_id[64]) {
    size_t dim = (size_t)bn_vgg16_dim(BN_LAYER_BLOCK5_POOL, BN_POOLING_NONE, s);
    bn_error err;
    bn_cpu_set_threads(1);
    bn_vgg16 *net = support_net(w, e, p, s, 1);
    snprintf(engine_id, 64, "%s", bn_vgg16_engine_id(net));
    for (int i = 0; i < nimg; i++)
        if (support_net_batch(net, in, nimg, s, i, 1, alone + i * dim, &err)) {
            fprintf(stderr, "image %d alone: %s\n", i, err.msg);
            exit(1);
        }
    bn_vgg16_free(net);
    net = support_net(w, BN_CONV_DIRECT, BN_PRECISION_FP32, s, nimg);
    if (support_net_batch(net, in, nimg, s, 0, nimg, exact, &err)) {
        fprintf(stderr, "the exact engine: %s\n", err.msg);
        exit(1);
    }
    bn_vgg16_free(net);
    double worst = 0;
    for (int i = 0; i < nimg; i++) {
        double d = support_rel_l2(alone + i * dim, exact + i * dim, dim);
        worst = d > worst ? d : worst;
    }
    return worst;
}

int support_rows_differ(const float *out, const float *alone, int nimg, int first, int n,
                        size_t dim) {
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += memcmp(out + i * dim, alone + (size_t)((first + i) % nimg) * dim,
                      dim * sizeof(float)) != 0;
    return bad;
}

const char *const support_ref_names[SUPPORT_NREF] = {"cat.1000",  "cat.10005", "cat.10014",
                                                     "dog.10000", "dog.10004", "dog.10006"};

float *support_ref_inputs(const char *refdir) {
    size_t per = (size_t)SUPPORT_REF_SIZE * SUPPORT_REF_SIZE * 3;
    float *in = malloc(SUPPORT_NREF * per * sizeof *in);
    for (int i = 0; i < SUPPORT_NREF; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.input.f32", refdir, support_ref_names[i]);
        float *x = support_read_f32(path, per);
        if (!x) {
            fprintf(stderr, "cannot read %s\n", path);
            free(in);
            return NULL;
        }
        memcpy(in + i * per, x, per * sizeof *x);
        free(x);
    }
    return in;
}

int support_ref_compare(bn_vgg16 *net, const float *in, const char *refdir, const char *engine,
                        double tol) {
    const int S = SUPPORT_REF_SIZE;
    const bn_layer layers[2] = {BN_LAYER_BLOCK3_POOL, BN_LAYER_BLOCK5_POOL};
    int failed = 0;
    for (int l = 0; l < 2; l++) {
        const char *lname = bn_vgg16_layer_name(layers[l]);
        int dim = bn_vgg16_dim(layers[l], BN_POOLING_NONE, S);
        float *out = malloc((size_t)SUPPORT_NREF * dim * sizeof *out);
        bn_error err;
        if (bn_vgg16_forward(net, in, SUPPORT_NREF, layers[l], BN_POOLING_NONE, out, &err) !=
            BN_OK) {
            fprintf(stderr, "reference %s (%s engine): %s\n", lname, engine, err.msg);
            failed++;
            free(out);
            continue;
        }
        for (int i = 0; i < SUPPORT_NREF; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s.%s.f32", refdir, support_ref_names[i], lname);
            float *ref = support_read_f32(path, dim);
            if (!ref) {
                fprintf(stderr, "cannot read %s\n", path);
                failed++;
                continue;
            }
            double e = support_rel_l2(out + (size_t)i * dim, ref, dim);
            printf("reference %-9s %s (%s engine): relative L2 error %.2e\n", support_ref_names[i],
                   lname, engine, e);
            if (!(e <= tol)) {
                fprintf(stderr, "reference %s %s (%s engine): relative L2 error %g > %g\n",
                        support_ref_names[i], lname, engine, e, tol);
                failed++;
            }
            free(ref);
        }
        free(out);
    }
    return failed;
}

/* ---- a temporary directory ---------------------------------------------- */

static char tmpdir[4096];

int support_use_fast_blas(char **argv) {
    const char *core = bn_cpu_blas_better_coretype();
    if (core && !getenv("BN_NO_REEXEC")) {
        printf("OpenBLAS chose %s kernels; re-running with OPENBLAS_CORETYPE=%s\n",
               bn_cpu_blas_core(), core);
        fflush(stdout);
        setenv("BN_TEST_REEXEC", "1", 1); /* what the run after the exec checks */
    }
    bn_cpu_blas_use_best_kernels(argv); /* returns only when it did not exec */
    const char *want = getenv("OPENBLAS_CORETYPE");
    if (getenv("BN_TEST_REEXEC") && want && strcasecmp(bn_cpu_blas_core(), want) != 0) {
        fprintf(stderr, "OpenBLAS runs %s kernels, asked for %s\n", bn_cpu_blas_core(), want);
        return -1;
    }
    printf("OpenBLAS kernels: %s\n", bn_cpu_blas_core());
    return 0;
}

const char *support_mkdtemp(const char *prefix) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/%s-XXXXXX", t && *t ? t : "/tmp", prefix);
    if (!mkdtemp(tmpdir)) {
        perror(tmpdir);
        return NULL;
    }
    return tmpdir;
}

const char *support_tmp_path(const char *name) {
    static char buf[8][4200];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 4200, "%s/%s", tmpdir, name);
    return p;
}

void support_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            support_remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- HDF5 --------------------------------------------------------------- */

int support_h5_strings(hid_t obj, const char *name, const char *const *s, int n, int vlen) {
    hsize_t dim = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t a;
    if (vlen) {
        H5Tset_size(type, H5T_VARIABLE);
        a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (n > 0)
            H5Awrite(a, type, s);
    } else {
        size_t size = 1;
        for (int i = 0; i < n; i++)
            if (strlen(s[i]) > size)
                size = strlen(s[i]);
        H5Tset_size(type, size);
        H5Tset_strpad(type, H5T_STR_NULLPAD);
        char *buf = calloc((size_t)(n ? n : 1), size);
        for (int i = 0; i < n; i++)
            memcpy(buf + (size_t)i * size, s[i], strlen(s[i]));
        a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (n > 0)
            H5Awrite(a, type, buf);
        free(buf);
    }
    int rc = a >= 0 ? 0 : -1;
    H5Aclose(a);
    H5Tclose(type);
    H5Sclose(space);
    return rc;
}

/* ---- GoogLeNet embeddings ---- */

int support_load_gnet(support_gnet *g) {
    const char *root = getenv("BN_SHARED");
    if (!root)
        return -1;
    char npy[4096], tsv[4096];
    snprintf(npy, sizeof npy, "%s/features/googlenet/catsdogs/embeddings.npy", root);
    snprintf(tsv, sizeof tsv, "%s/features/googlenet/catsdogs/index.tsv", root);
    FILE *f = fopen(npy, "rb");
    if (!f)
        return -1;
    /* The header is 128 bytes (checked by test_npy); rows are 1024 floats. */
    float *all = malloc((size_t)3000 * 1024 * 4);
    fseek(f, 128, SEEK_SET);
    size_t got = fread(all, 4, (size_t)3000 * 1024, f);
    fclose(f);
    if (got != (size_t)3000 * 1024)
        return -1;
    FILE *t = fopen(tsv, "r");
    if (!t)
        return -1;
    char line[1024];
    if (!fgets(line, sizeof line, t))
        return -1;
    g->xt = malloc((size_t)3000 * 1024 * 4);
    g->xv = malloc((size_t)3000 * 1024 * 4);
    g->yt = malloc(3000 * sizeof(int));
    g->yv = malloc(3000 * sizeof(int));
    g->nt = g->nv = 0;
    for (int i = 0; i < 3000 && fgets(line, sizeof line, t); i++) {
        int dog = strstr(line, "\tdog\t") != NULL;
        if (strstr(line, "\ttrain\t")) {
            memcpy(g->xt + (size_t)g->nt * 1024, all + (size_t)i * 1024, 4096);
            g->yt[g->nt++] = dog;
        } else {
            memcpy(g->xv + (size_t)g->nv * 1024, all + (size_t)i * 1024, 4096);
            g->yv[g->nv++] = dog;
        }
    }
    fclose(t);
    free(all);
    return g->nt == 2000 && g->nv == 1000 ? 0 : -1;
}

void support_free_gnet(support_gnet *g) {
    free(g->xt), free(g->xv), free(g->yt), free(g->yv);
    memset(g, 0, sizeof *g);
}

/* ---- Exif ---------------------------------------------------------------- */

void support_tiff_put(unsigned char *p, int bytes, uint32_t v, int be) {
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> 8 * (be ? bytes - 1 - i : i));
}

size_t support_exif_block(unsigned char *b, int be, const support_tiff_entry *e, int ne,
                          uint32_t next, const unsigned char *tail, size_t tail_len) {
    memcpy(b, "Exif\0\0", 6);
    unsigned char *t = b + 6;
    memcpy(t, be ? "MM" : "II", 2);
    support_tiff_put(t + 2, 2, 42, be);
    support_tiff_put(t + 4, 4, 8, be);
    support_tiff_put(t + 8, 2, (uint32_t)ne, be);
    for (int i = 0; i < ne; i++) {
        unsigned char *q = t + 10 + 12 * i;
        support_tiff_put(q, 2, e[i].tag, be);
        support_tiff_put(q + 2, 2, e[i].type, be);
        support_tiff_put(q + 4, 4, e[i].count, be);
        support_tiff_put(q + 8, 4, 0, be); /* a SHORT fills half the field */
        support_tiff_put(q + 8, e[i].type == 3 && e[i].count == 1 ? 2 : 4, e[i].value, be);
    }
    support_tiff_put(t + 10 + 12 * ne, 4, next, be);
    if (tail_len) /* tail may be NULL then, and memcpy's arguments never */
        memcpy(t + 14 + 12 * ne, tail, tail_len);
    return 6 + 14 + 12 * (size_t)ne + tail_len;
}

static uint32_t png_crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void png_put32(unsigned char *p, uint32_t v) {
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

size_t support_png_declaring(unsigned char *out, uint32_t w, uint32_t h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    /* zlib stream, one stored block of 4 zero bytes (filter byte + one
     * black pixel), Adler-32 0x00040001 */
    static const unsigned char idat[] = {0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01};
    memcpy(out, sig, 8);
    size_t n = 8;
    png_put32(out + n, 13);
    memcpy(out + n + 4, "IHDR", 4);
    png_put32(out + n + 8, w);
    png_put32(out + n + 12, h);
    out[n + 16] = 8, out[n + 17] = 2, out[n + 18] = 0, out[n + 19] = 0, out[n + 20] = 0;
    png_put32(out + n + 21, png_crc32(out + n + 4, 17));
    n += 25;
    png_put32(out + n, sizeof idat);
    memcpy(out + n + 4, "IDAT", 4);
    memcpy(out + n + 8, idat, sizeof idat);
    png_put32(out + n + 8 + sizeof idat, png_crc32(out + n + 4, 4 + sizeof idat));
    n += 12 + sizeof idat;
    png_put32(out + n, 0);
    memcpy(out + n + 4, "IEND", 4);
    png_put32(out + n + 8, png_crc32(out + n + 4, 4));
    return n + 12;
}
