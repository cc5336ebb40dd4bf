/*
 * test_weights.c: the Keras HDF5 weights loader and where weights are found.
 *
 * 1. The shared file ../shared/models/vgg16_random_notop.h5: all 13 shapes,
 *    its sha256 (from `sha256sum`), a few values printed by h5dump (package
 *    hdf5-tools 1.10.8), e.g.
 *      h5dump -m %.9g -w 0 -d "/block1_conv1/block1_conv1_W_1:0" \
 *             -s 0,0,0,0 -c 1,1,1,4 vgg16_random_notop.h5
 *    and then every value against a read through the raw HDF5 API by fixed
 *    absolute dataset paths (not following the weight_names attributes).
 * 2. Files this program writes with libhdf5 in the layouts Keras uses: the
 *    legacy spelling, the nested newer one with variable-length strings and
 *    a float64 layer, a full model with top layers, a full-model save with
 *    the layers under /model_weights and layer_names split in chunks. Values
 *    are a known pattern per layer, so a kernel read from the wrong dataset
 *    or layer shows.
 * 3. Broken files: each error names the file and the problem in one line,
 *    leaves the weights empty, and libhdf5 prints nothing to stderr.
 * 4. bn_weights_cache_dir and bn_weights_locate.
 * All files live in a temporary directory that is removed at the end.
 */
#include "check.h"
#include "support.h"
#include "weights.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmpdir; /* support_mkdtemp */

static int weights_empty(const bn_vgg16_weights *w) {
    for (int i = 0; i < BN_VGG16_NCONV; i++)
        if (w->conv[i].kernel || w->conv[i].bias || w->conv[i].cin || w->conv[i].cout)
            return 0;
    return w->sha256[0] == '\0';
}

/* bn_weights_load with stderr redirected to a file: returns the load's code
 * and stores how many bytes were written to stderr meanwhile. */
static int load_quietly(bn_vgg16_weights *w, const char *path, bn_error *err, long *noise) {
    const char *cap = support_tmp_path("stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    int rc = bn_weights_load(w, path, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct stat st;
    *noise = stat(cap, &st) == 0 ? (long)st.st_size : -1;
    unlink(cap);
    return rc;
}

/* ---- 1. the shared file ------------------------------------------------- */

static float *raw_read(hid_t f, const char *path, size_t count) {
    float *buf = malloc(count * sizeof *buf);
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    CHECK_MSG(d >= 0, "%s", path);
    if (d < 0)
        return buf;
    hid_t s = H5Dget_space(d);
    CHECK_INT(H5Sget_simple_extent_npoints(s), count);
    CHECK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

static size_t kidx(const bn_conv_weights *c, int kh, int kw, int ci, int co) {
    return (((size_t)kh * 3 + (size_t)kw) * (size_t)c->cin + (size_t)ci) * (size_t)c->cout +
           (size_t)co;
}

static void test_shared_file(void) {
    const char *path = shared_path("models/vgg16_random_notop.h5");
    bn_vgg16_weights w;
    bn_error err = {0};
    int rc = bn_weights_load(&w, path, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc)
        return;
    static const int cin[13] = {3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512};
    static const int cout[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
    for (int i = 0; i < BN_VGG16_NCONV; i++) {
        CHECK_INT(w.conv[i].cin, cin[i]);
        CHECK_INT(w.conv[i].cout, cout[i]);
        CHECK_INT(bn_vgg16_convs[i].cin, cin[i]);
        CHECK_INT(bn_vgg16_convs[i].cout, cout[i]);
        CHECK(w.conv[i].kernel != NULL && w.conv[i].bias != NULL);
    }
    CHECK_STR(w.sha256, "c974c2ab26fa3cd90860dd16a70601764a5d55517ad54988e107a676085f8ef1");

    /* Values printed by h5dump -m %.9g (see the header comment). */
    const bn_conv_weights *c1 = &w.conv[0], *c4 = &w.conv[8], *c5 = &w.conv[12];
    CHECK_NEAR(c1->kernel[kidx(c1, 0, 0, 0, 0)], -0.101814568, 1e-9);
    CHECK_NEAR(c1->kernel[kidx(c1, 0, 0, 0, 1)], -0.0695747659, 1e-9);
    CHECK_NEAR(c1->kernel[kidx(c1, 0, 0, 0, 2)], 0.255405158, 1e-9);
    CHECK_NEAR(c1->kernel[kidx(c1, 0, 0, 0, 3)], 0.378884703, 1e-9);
    CHECK_NEAR(c5->kernel[kidx(c5, 2, 1, 511, 508)], 0.00796314143, 1e-10);
    CHECK_NEAR(c5->kernel[kidx(c5, 2, 1, 511, 509)], 0.00101414858, 1e-10);
    CHECK_NEAR(c5->kernel[kidx(c5, 2, 1, 511, 510)], 0.00294799986, 1e-10);
    CHECK_NEAR(c5->kernel[kidx(c5, 2, 1, 511, 511)], -0.0101429643, 1e-10);
    CHECK_NEAR(c4->kernel[kidx(c4, 1, 2, 100, 7)], 0.0171127301, 1e-10);
    CHECK_NEAR(c4->kernel[kidx(c4, 1, 2, 100, 8)], 0.0167949926, 1e-10);
    CHECK_NEAR(w.conv[4].bias[0], -0.0323061273, 1e-10);
    CHECK_NEAR(w.conv[4].bias[1], -0.00147598097, 1e-10);
    CHECK_NEAR(w.conv[4].bias[2], -0.0588393696, 1e-10);
    CHECK_NEAR(w.conv[4].bias[3], 0.0359043255, 1e-10);

    /* Everything, against fixed absolute paths in the legacy spelling. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    for (int i = 0; i < BN_VGG16_NCONV && f >= 0; i++) {
        const char *n = bn_vgg16_convs[i].name;
        char kp[128], bp[128];
        snprintf(kp, sizeof kp, "/%s/%s_W_1:0", n, n);
        snprintf(bp, sizeof bp, "/%s/%s_b_1:0", n, n);
        size_t kc = (size_t)9 * (size_t)cin[i] * (size_t)cout[i];
        float *k = raw_read(f, kp, kc), *b = raw_read(f, bp, (size_t)cout[i]);
        CHECK_MSG(memcmp(k, w.conv[i].kernel, kc * sizeof(float)) == 0, "%s kernel differs", n);
        CHECK_MSG(memcmp(b, w.conv[i].bias, (size_t)cout[i] * sizeof(float)) == 0,
                  "%s bias differs", n);
        free(k);
        free(b);
    }
    if (f >= 0)
        H5Fclose(f);
    bn_weights_free(&w);
    CHECK(weights_empty(&w));
}

/* ---- 2./3. files written here ------------------------------------------ */

typedef enum {
    BRK_NONE,
    BRK_KERNEL_SHAPE,    /* block3_conv1 kernel (3,3,64,256) */
    BRK_BIAS_SHAPE,      /* block5_conv1 bias (256) */
    BRK_MISSING_LAYER,   /* block4_conv2 neither listed nor present */
    BRK_MISSING_DATASET, /* block2_conv1 bias named but not written */
    BRK_NO_GROUP,        /* block1_conv2 listed, group absent */
    BRK_INT_KERNEL,      /* block1_conv1 kernel int32 */
    BRK_ONE_WEIGHT,      /* block2_conv2 weight_names lists only the kernel */
    BRK_NO_WEIGHT_NAMES, /* block3_conv2 has no weight_names */
    BRK_NO_LAYER_NAMES,  /* no layer_names anywhere */
} breakage;

typedef struct {
    int nested;        /* weight names "block1_conv1/kernel:0" (subgroup) */
    int vlen;          /* variable-length string attributes */
    int top;           /* also flatten, fc1, fc2, predictions */
    int model_weights; /* layer groups under /model_weights (full-model save) */
    int split_names;   /* layer_names stored as layer_names0, layer_names1 */
    int f64_layer;     /* this conv's arrays stored as float64; -1 for none */
    int data;          /* write pattern values; else leave datasets unwritten (tiny file) */
    breakage brk;
} h5spec;

/* The value stored at flat index i of layer l's kernel (bias: kind 1). */
static float pattern(int l, size_t i, int kind) {
    return kind == 0 ? (float)(l + 1) + (float)(i % 997) / 1024.0f
                     : -(float)(l + 1) - (float)(i % 61) / 64.0f;
}

static void put_strings(hid_t obj, const char *name, const char *const *s, int n, int vlen) {
    CHECK_MSG(support_h5_strings(obj, name, s, n, vlen) == 0, "attribute %s", name);
}

/* Dataset `name` (may contain '/') in g with the given shape; values from
 * pattern(l, i, kind) when data is set. */
static void put_array(hid_t g, const char *name, int rank, const hsize_t *dims, hid_t ftype,
                      int data, int l, int kind) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_MSG(d >= 0, "creating %s", name);
    if (data) {
        size_t n = 1;
        for (int i = 0; i < rank; i++)
            n *= (size_t)dims[i];
        if (H5Tget_class(ftype) == H5T_INTEGER) {
            int *v = calloc(n, sizeof *v);
            H5Dwrite(d, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            free(v);
        } else if (H5Tget_size(ftype) == 8) {
            double *v = malloc(n * sizeof *v);
            for (size_t i = 0; i < n; i++)
                v[i] = (double)pattern(l, i, kind);
            CHECK(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
            free(v);
        } else {
            float *v = malloc(n * sizeof *v);
            for (size_t i = 0; i < n; i++)
                v[i] = pattern(l, i, kind);
            CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
            free(v);
        }
    }
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
}

/* One layer group with weights (kernel shape kdims[krank], bias (nb)). */
static void put_layer(hid_t root, const char *name, const h5spec *s, int l, int krank,
                      const hsize_t *kdims, hsize_t nb, hid_t ftype) {
    hid_t g = H5Gcreate2(root, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char kn[128], bn[128];
    if (s->nested) {
        snprintf(kn, sizeof kn, "%s/kernel:0", name);
        snprintf(bn, sizeof bn, "%s/bias:0", name);
    } else {
        snprintf(kn, sizeof kn, "%s_W_1:0", name);
        snprintf(bn, sizeof bn, "%s_b_1:0", name);
    }
    const char *wn[2] = {kn, bn};
    int nw = 2;
    if (s->brk == BRK_ONE_WEIGHT && !strcmp(name, "block2_conv2"))
        nw = 1;
    if (!(s->brk == BRK_NO_WEIGHT_NAMES && !strcmp(name, "block3_conv2")))
        put_strings(g, "weight_names", wn, nw, s->vlen);
    hid_t kt = ftype;
    if (s->brk == BRK_INT_KERNEL && !strcmp(name, "block1_conv1"))
        kt = H5T_STD_I32LE;
    put_array(g, kn, krank, kdims, kt, s->data, l, 0);
    if (!(s->brk == BRK_MISSING_DATASET && !strcmp(name, "block2_conv1")))
        put_array(g, bn, 1, &nb, ftype, s->data, l, 1);
    H5Gclose(g);
}

static void put_empty_layer(hid_t root, const char *name, int vlen) {
    hid_t g = H5Gcreate2(root, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_strings(g, "weight_names", NULL, 0, vlen);
    H5Gclose(g);
}

static void write_keras(const char *path, const h5spec *s) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(f >= 0);
    hid_t root = f;
    if (s->model_weights) {
        /* What a Keras model.save() also puts at the root. */
        const char *cfg = "{\"class_name\": \"Functional\"}";
        put_strings(f, "model_config", &cfg, 1, 1);
        root = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    }
    const char *names[32];
    int nn = 0;
    names[nn++] = "input_1";
    put_empty_layer(root, "input_1", s->vlen);
    for (int l = 0; l < BN_VGG16_NCONV; l++) {
        const bn_vgg16_conv_spec *c = &bn_vgg16_convs[l];
        int skip_group = s->brk == BRK_NO_GROUP && !strcmp(c->name, "block1_conv2");
        if (s->brk == BRK_MISSING_LAYER && !strcmp(c->name, "block4_conv2"))
            continue;
        names[nn++] = c->name;
        hsize_t k[4] = {3, 3, (hsize_t)c->cin, (hsize_t)c->cout};
        hsize_t nb = (hsize_t)c->cout;
        if (s->brk == BRK_KERNEL_SHAPE && !strcmp(c->name, "block3_conv1"))
            k[2] = 64;
        if (s->brk == BRK_BIAS_SHAPE && !strcmp(c->name, "block5_conv1"))
            nb = 256;
        hid_t ft = l == s->f64_layer ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
        if (!skip_group)
            put_layer(root, c->name, s, l, 4, k, nb, ft);
        int last_in_block = l == 12 || bn_vgg16_convs[l + 1].name[5] != c->name[5];
        if (last_in_block) {
            static char pools[5][16];
            int b = c->name[5] - '1';
            snprintf(pools[b], sizeof pools[b], "block%d_pool", b + 1);
            names[nn++] = pools[b];
            put_empty_layer(root, pools[b], s->vlen);
        }
    }
    if (s->top) {
        static const hsize_t fc[3][2] = {{8, 4}, {4, 4}, {4, 2}};
        static const char *const tn[3] = {"fc1", "fc2", "predictions"};
        names[nn++] = "flatten";
        put_empty_layer(root, "flatten", s->vlen);
        for (int i = 0; i < 3; i++) {
            names[nn++] = tn[i];
            put_layer(root, tn[i], s, 20 + i, 2, fc[i], fc[i][1], H5T_IEEE_F32LE);
        }
    }
    if (s->brk != BRK_NO_LAYER_NAMES) {
        if (s->split_names) {
            put_strings(root, "layer_names0", names, nn / 2, s->vlen);
            put_strings(root, "layer_names1", names + nn / 2, nn - nn / 2, s->vlen);
        } else {
            put_strings(root, "layer_names", names, nn, s->vlen);
        }
        const char *bk = "tensorflow";
        put_strings(root, "backend", &bk, 1, 1);
    }
    if (root != f)
        H5Gclose(root);
    CHECK(H5Fclose(f) >= 0);
}

/* A written file loads and every value is the pattern of its own layer. */
static void check_good(const char *name, const h5spec *s) {
    const char *path = support_tmp_path(name);
    write_keras(path, s);
    bn_vgg16_weights w;
    bn_error err = {0};
    long noise;
    int rc = load_quietly(&w, path, &err, &noise);
    CHECK_MSG(rc == 0, "%s: %s", name, err.msg);
    CHECK_INT(noise, 0);
    if (rc == 0) {
        int bad = 0;
        for (int l = 0; l < BN_VGG16_NCONV; l++) {
            const bn_conv_weights *c = &w.conv[l];
            CHECK_INT(c->cin, bn_vgg16_convs[l].cin);
            CHECK_INT(c->cout, bn_vgg16_convs[l].cout);
            size_t kc = (size_t)9 * (size_t)c->cin * (size_t)c->cout;
            for (size_t i = 0; i < kc && s->data; i++)
                bad += c->kernel[i] != pattern(l, i, 0);
            for (int i = 0; i < c->cout && s->data; i++)
                bad += c->bias[i] != pattern(l, (size_t)i, 1);
        }
        CHECK_MSG(bad == 0, "%s: %d values differ from what was written", name, bad);
        CHECK_INT(strlen(w.sha256), 64);
    }
    bn_weights_free(&w);
    unlink(path);
}

/* A file that must fail with exactly "<path>: <want>". */
static void check_bad_file(const char *path, int want_code, const char *want) {
    bn_vgg16_weights w;
    memset(&w, 0x5a, sizeof w); /* garbage in: the loader must clear it */
    bn_error err = {0};
    long noise;
    int rc = load_quietly(&w, path, &err, &noise);
    printf("expected failure: %s\n", err.msg);
    char full[2048];
    snprintf(full, sizeof full, "%s: %s", path, want);
    CHECK_INT(rc, want_code);
    CHECK_INT(err.code, want_code);
    CHECK_STR(err.msg, full);
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK(weights_empty(&w));
    CHECK_MSG(noise == 0, "%ld bytes on stderr loading %s", noise, path);
}

static void check_bad(const char *name, const h5spec *s, const char *want) {
    const char *path = support_tmp_path(name);
    write_keras(path, s);
    check_bad_file(path, BN_EFORMAT, want);
    unlink(path);
}

static void copy_prefix(const char *from, const char *to, size_t n) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[1 << 16];
    while (n > 0) {
        size_t k = fread(buf, 1, n < sizeof buf ? n : sizeof buf, in);
        if (k == 0)
            break;
        fwrite(buf, 1, k, out);
        n -= k;
    }
    fclose(in);
    fclose(out);
}

static void test_written_files(void) {
    h5spec legacy = {.f64_layer = -1, .data = 1};
    check_good("legacy.h5", &legacy);

    h5spec nested = {.nested = 1, .vlen = 1, .f64_layer = 0, .data = 1};
    check_good("nested_vlen_f64.h5", &nested);

    h5spec full = {.top = 1, .f64_layer = -1, .data = 1};
    check_good("full_model.h5", &full);

    h5spec saved = {
        .nested = 1, .top = 1, .model_weights = 1, .split_names = 1, .f64_layer = -1, .data = 1};
    check_good("model_weights.h5", &saved);

    /* Broken ones need no data: unwritten datasets keep the files tiny. */
    h5spec b = {.f64_layer = -1};
    b.brk = BRK_KERNEL_SHAPE;
    check_bad("wrong_kernel.h5", &b,
              "block3_conv1 kernel has shape (3,3,64,256), expected (3,3,128,256)");
    b.brk = BRK_BIAS_SHAPE;
    check_bad("wrong_bias.h5", &b, "block5_conv1 bias has shape (256), expected (512)");
    b.brk = BRK_MISSING_LAYER;
    check_bad("missing_layer.h5", &b, "layer block4_conv2 is missing (not in layer_names)");
    b.brk = BRK_MISSING_DATASET;
    check_bad("missing_dataset.h5", &b,
              "block2_conv1 bias dataset 'block2_conv1_b_1:0' is missing");
    b.brk = BRK_NO_GROUP;
    check_bad("no_group.h5", &b, "layer block1_conv2 is listed but its group is missing");
    b.brk = BRK_INT_KERNEL;
    check_bad("int_kernel.h5", &b, "block1_conv1 kernel has integer data, expected float32");
    b.brk = BRK_ONE_WEIGHT;
    check_bad("one_weight.h5", &b, "layer block2_conv2 lists 1 weight, expected 2 (kernel, bias)");
    b.brk = BRK_NO_WEIGHT_NAMES;
    check_bad("no_weight_names.h5", &b, "layer block3_conv2 has no weight_names attribute");
    b.brk = BRK_NO_LAYER_NAMES;
    check_bad("no_layer_names.h5", &b,
              "no layer_names attribute at / or /model_weights (not a Keras weights file)");
    h5spec nb = {
        .nested = 1, .vlen = 1, .model_weights = 1, .f64_layer = -1, .brk = BRK_MISSING_DATASET};
    check_bad("nested_missing.h5", &nb,
              "block2_conv1 bias dataset 'block2_conv1/bias:0' is missing");

    /* Truncated copies of the real file: at half its size, and in the header. */
    const char *real = shared_path("models/vgg16_random_notop.h5");
    const char *half = support_tmp_path("half.h5"), *head = support_tmp_path("head.h5");
    copy_prefix(real, half, 58892792 / 2);
    copy_prefix(real, head, 1000);
    check_bad_file(half, BN_EFORMAT,
                   "truncated HDF5 file (29446396 bytes, its header says 58892792)");
    check_bad_file(head, BN_EFORMAT, "truncated HDF5 file (1000 bytes, its header says 58892792)");

    const char *txt = support_tmp_path("weights.txt"), *empty = support_tmp_path("empty.h5");
    FILE *f = fopen(txt, "w");
    fputs("these are not weights\n", f);
    fclose(f);
    fclose(fopen(empty, "w"));
    check_bad_file(txt, BN_EFORMAT, "not an HDF5 file");
    check_bad_file(empty, BN_EFORMAT, "not an HDF5 file (empty)");
    check_bad_file(support_tmp_path("absent.h5"), BN_EIO, "No such file or directory");
    check_bad_file(tmpdir, BN_EIO, "is a directory, expected a weights file");
    unlink(half);
    unlink(head);
    unlink(txt);
    unlink(empty);
}

/* ---- 4. cache dir and locate ------------------------------------------- */

static void test_locate(void) {
    char out[4096];
    bn_error err = {0};

    setenv("XDG_CACHE_HOME", "/some/cache", 1);
    CHECK_INT(bn_weights_cache_dir(out, sizeof out, &err), 0);
    CHECK_STR(out, "/some/cache/bottleneck");
    setenv("HOME", "/home/someone", 1);
    setenv("XDG_CACHE_HOME", "relative/ignored", 1);
    CHECK_INT(bn_weights_cache_dir(out, sizeof out, &err), 0);
    CHECK_STR(out, "/home/someone/.cache/bottleneck");
    unsetenv("XDG_CACHE_HOME");
    CHECK_INT(bn_weights_cache_dir(out, sizeof out, &err), 0);
    CHECK_STR(out, "/home/someone/.cache/bottleneck");
    char tiny[8];
    CHECK_INT(bn_weights_cache_dir(tiny, sizeof tiny, &err), BN_EINVAL);

    /* Explicit path wins, and must exist. */
    const char *real = shared_path("models/vgg16_random_notop.h5");
    setenv("BOTTLENECK_WEIGHTS", support_tmp_path("not-there.h5"), 1);
    CHECK_INT(bn_weights_locate(out, sizeof out, real, &err), 0);
    CHECK_STR(out, real);
    CHECK_INT(bn_weights_locate(out, sizeof out, support_tmp_path("typo.h5"), &err), BN_EIO);
    CHECK(strstr(err.msg, "typo.h5: No such file or directory (given with --weights)") != NULL);

    /* Then $BOTTLENECK_WEIGHTS, also strict. */
    CHECK_INT(bn_weights_locate(out, sizeof out, NULL, &err), BN_EIO);
    CHECK_MSG(strstr(err.msg, "not-there.h5: No such file or directory (from $BOTTLENECK_WEIGHTS)"),
              "%s", err.msg);
    setenv("BOTTLENECK_WEIGHTS", real, 1);
    CHECK_INT(bn_weights_locate(out, sizeof out, "", &err), 0);
    CHECK_STR(out, real);

    /* Then the cache; an empty variable counts as unset. */
    setenv("BOTTLENECK_WEIGHTS", "", 1);
    setenv("XDG_CACHE_HOME", tmpdir, 1);
    char want[4200];
    snprintf(want, sizeof want, "%s/bottleneck/%s", tmpdir, BN_VGG16_WEIGHTS_FILE);
    CHECK_INT(bn_weights_locate(out, sizeof out, NULL, &err), BN_EIO);
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, "--weights") &&
                  strstr(err.msg, "$BOTTLENECK_WEIGHTS") && strstr(err.msg, "--download"),
              "%s", err.msg);
    CHECK(strchr(err.msg, '\n') == NULL);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/bottleneck", tmpdir);
    CHECK_INT(mkdir(dir, 0700), 0);
    fclose(fopen(want, "w"));
    CHECK_INT(bn_weights_locate(out, sizeof out, NULL, &err), 0);
    CHECK_STR(out, want);
    unsetenv("BOTTLENECK_WEIGHTS");
    CHECK_INT(bn_weights_locate(out, sizeof out, NULL, &err), 0);
    CHECK_STR(out, want);
    unlink(want);
    rmdir(dir);
}

int main(void) {
    tmpdir = support_mkdtemp("bn-test-weights");
    if (!tmpdir)
        return 1;
    test_shared_file();
    test_written_files();
    test_locate();
    support_remove_tree(tmpdir);
    return check_done();
}
