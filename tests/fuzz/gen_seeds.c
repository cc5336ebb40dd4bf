/*
 * gen_seeds.c: writes the seed corpora of the fuzz harnesses, so that no
 * binary seed is checked in:
 *
 *   gen_seeds DIR      ->  DIR/npy/  DIR/vec/  DIR/weights/  DIR/onnx/
 *
 * npy: valid files in the three format versions and the ways numpy headers
 *      go wrong (other dtypes, byte order, Fortran order, 1-D and 3-D shapes,
 *      empty shapes, truncated and oversized data, structured dtypes).
 * vec: inputs in fuzz_vec.c's layout: float32 and float16 BLOBs, JSON text,
 *      empty, odd-length, NaN and Inf values, mismatched dimensions.
 * weights: Keras HDF5 files, small because their datasets are never written
 *      (HDF5 allocates them lazily and reads back the fill value): the
 *      legacy and nested weight names, fixed and variable-length strings,
 *      full-model files, split layer_names, wrong shapes and types, missing
 *      attributes and groups.
 * onnx: small models (tests/onnx_write.h) with every supported operator:
 *      Conv (strides, pads, groups) + BatchNormalization, Relu, Clip with
 *      constant inputs, pools with ceil_mode, LRN, Concat, Add, Flatten,
 *      Reshape with a Constant shape, Gemm, MatMul, Dropout, Softmax.
 */
#include "npy.h"
#include "onnx_write.h"
#include "support.h"
#include "weights.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[4096];

static const char *path_in(const char *sub, const char *name) {
    static char p[4600];
    snprintf(p, sizeof p, "%s/%s/%s", root, sub, name);
    return p;
}

static void write_file(const char *path, const void *a, size_t na, const void *b, size_t nb) {
    FILE *f = fopen(path, "wb");
    if (!f || (na && fwrite(a, 1, na, f) != na) || (nb && fwrite(b, 1, nb, f) != nb) ||
        fclose(f) != 0) {
        fprintf(stderr, "gen_seeds: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- npy ----------------------------------------------------------------- */

/* A .npy file: magic, version, header (padded to 64 as numpy does), then
 * nbytes of float data. */
static void npy(const char *name, int major, const char *header, size_t nbytes) {
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    size_t npre = major == 1 ? 10 : 12;
    char h[512];
    size_t len = (size_t)snprintf(h, sizeof h, "%s", header);
    while ((npre + len + 1) % 64)
        h[len++] = ' ';
    h[len++] = '\n';
    pre[8] = (unsigned char)len, pre[9] = (unsigned char)(len >> 8);
    if (major != 1)
        pre[10] = pre[11] = 0;
    unsigned char *buf = malloc(npre + len + nbytes + 1);
    memcpy(buf, pre, npre);
    memcpy(buf + npre, h, len);
    for (size_t i = 0; i < nbytes; i++)
        buf[npre + len + i] = (unsigned char)(i * 7 + 0x3f);
    write_file(path_in("npy", name), buf, npre + len + nbytes, NULL, 0);
    free(buf);
}

static void gen_npy(void) {
    float m[12];
    for (int i = 0; i < 12; i++)
        m[i] = (float)i / 3.0f;
    bn_error err;
    if (bn_npy_save(path_in("npy", "saved.npy"), m, 3, 4, &err)) {
        fprintf(stderr, "gen_seeds: %s\n", err.msg);
        exit(1);
    }
    const char *f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    npy("v1.npy", 1, f4, 48);
    npy("v2.npy", 2, f4, 48);
    npy("v3.npy", 3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 2)}", 16);
    npy("long.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 24);
    npy("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", 96);
    npy("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 4), }", 48);
    npy("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", 48);
    npy("1d.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", 48);
    npy("3d.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 2), }", 48);
    npy("empty.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", 0);
    npy("truncated.npy", 1, f4, 40);
    npy("extra.npy", 1, f4, 52);
    npy("struct.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 12);
    npy("huge.npy", 1,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 2), }", 8);
    npy("v9.npy", 9, f4, 48);
    write_file(path_in("npy", "magic_only.npy"), "\x93NUMPY", 6, NULL, 0);
}

/* ---- vec ----------------------------------------------------------------- */

static void vec(const char *name, int mode, int lo, int hi, const void *a, size_t na, const void *b,
                size_t nb) {
    unsigned char head[4] = {(unsigned char)mode, (unsigned char)lo, (unsigned char)hi, 0};
    /* split = 4 + (size - 4) * head[3] / 255 must land at na. */
    size_t total = na + nb;
    head[3] = total ? (unsigned char)((na * 255 + total - 1) / total) : 0;
    while (head[3] > 0 && 4 + total * (head[3] - 1) / 255 >= 4 + na)
        head[3]--;
    while (4 + total * head[3] / 255 < 4 + na)
        head[3]++;
    unsigned char *buf = malloc(4 + total + 1);
    memcpy(buf, head, 4);
    memcpy(buf + 4, a, na);
    memcpy(buf + 4 + na, b, nb);
    write_file(path_in("vec", name), buf, 4 + total, NULL, 0);
    free(buf);
}

static void gen_vec(void) {
    const float a4[4] = {1, 2, 3, 4}, b4[4] = {4, -3, 2.5f, 0};
    const float z4[4] = {0, 0, 0, 0};
    const unsigned short h4[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1 2 3 4 as f16 */
    const float odd[4] = {__builtin_nanf(""), __builtin_inff(), -__builtin_inff(), 1e-45f};
    vec("f32_pair", 0, 1, 4, a4, sizeof a4, b4, sizeof b4);
    vec("f32_zero", 0, 0, 4, a4, sizeof a4, z4, sizeof z4);
    vec("f32_nan_inf", 0, -1, 4, odd, sizeof odd, a4, sizeof a4);
    vec("f16_pair", 4, 0, 4, h4, sizeof h4, h4, sizeof h4);
    vec("f16_store_f32_query", 4, 2, 4, a4, sizeof a4, h4, sizeof h4);
    vec("dim_mismatch", 0, 3, 4, a4, sizeof a4, b4, 12);
    vec("odd_bytes", 0, 0, 5, a4, 5, b4, 7);
    vec("empty", 0, 0, 0, "", 0, "", 0);
    const char *j1 = "[1, 2.5, -3e2, 4]", *j2 = "[0.25,1e-3,  -0, 7 ]";
    vec("json_pair", 3, 1, 4, j1, strlen(j1), j2, strlen(j2));
    const char *j3 = "[1e400, -1e400]", *j4 = "[[1], {\"a\": 2}]";
    vec("json_bad", 3, 0, 2, j3, strlen(j3), j4, strlen(j4));
    const char *j5 = "[]", *j6 = "[1,2,3,4";
    vec("json_empty", 3, 0, 4, j5, strlen(j5), j6, strlen(j6));
    vec("json_and_blob", 1, 1, 4, j1, strlen(j1), a4, sizeof a4);
    vec("slice_reversed", 0, 3, 1, a4, sizeof a4, b4, sizeof b4);
}

/* ---- weights -------------------------------------------------------------- */

/* An unwritten dataset of this shape and type (lazily allocated: no bytes). */
static void h5_dataset(hid_t g, const char *name, int rank, const hsize_t *dims, hid_t type) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
}

enum {
    W_NESTED = 1,
    W_VLEN = 2,
    W_MODEL = 4,
    W_SPLIT = 8,
    W_BAD_SHAPE = 16,
    W_INT = 32,
    W_NO_NAMES = 64,
    W_NO_GROUP = 128,
    W_ONE_WEIGHT = 256,
    W_F64 = 512,
    W_TOP = 1024,
    W_NLAYERS3 = 2048
};

static void gen_weights_file(const char *name, int how) {
    hid_t f = H5Fcreate(path_in("weights", name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "gen_seeds: cannot create %s\n", name);
        exit(1);
    }
    hid_t r = f;
    if (how & W_MODEL) {
        const char *cfg = "{\"class_name\": \"Functional\"}";
        support_h5_strings(f, "model_config", &cfg, 1, 1);
        r = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    }
    const char *names[32];
    static char pools[5][16];
    int nn = 0, nconv = how & W_NLAYERS3 ? 3 : BN_VGG16_NCONV;
    names[nn++] = "input_1";
    hid_t g = H5Gcreate2(r, "input_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    support_h5_strings(g, "weight_names", NULL, 0, how & W_VLEN);
    H5Gclose(g);
    for (int l = 0; l < nconv; l++) {
        const bn_vgg16_conv_spec *c = &bn_vgg16_convs[l];
        names[nn++] = c->name;
        if ((how & W_NO_GROUP) && l == 1)
            continue;
        char kn[128], bn[128];
        snprintf(kn, sizeof kn, how & W_NESTED ? "%s/kernel:0" : "%s_W_1:0", c->name);
        snprintf(bn, sizeof bn, how & W_NESTED ? "%s/bias:0" : "%s_b_1:0", c->name);
        const char *wn[2] = {kn, bn};
        g = H5Gcreate2(r, c->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        support_h5_strings(g, "weight_names", wn, (how & W_ONE_WEIGHT) && l == 2 ? 1 : 2,
                           how & W_VLEN);
        hsize_t k[4] = {3, 3, (hsize_t)c->cin, (hsize_t)c->cout}, nb = (hsize_t)c->cout;
        if ((how & W_BAD_SHAPE) && l == 1)
            k[3] = 32;
        hid_t t = (how & W_INT) && l == 0   ? H5T_STD_I32LE
                  : (how & W_F64) && l == 0 ? H5T_IEEE_F64LE
                                            : H5T_IEEE_F32LE;
        h5_dataset(g, kn, 4, k, t);
        h5_dataset(g, bn, 1, &nb, t);
        H5Gclose(g);
        int b = c->name[5] - '1';
        if (l == BN_VGG16_NCONV - 1 || bn_vgg16_convs[l + 1].name[5] != c->name[5]) {
            snprintf(pools[b], sizeof pools[b], "block%d_pool", b + 1);
            names[nn++] = pools[b];
            g = H5Gcreate2(r, pools[b], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            support_h5_strings(g, "weight_names", NULL, 0, how & W_VLEN);
            H5Gclose(g);
        }
    }
    if (how & W_TOP) {
        names[nn++] = "fc1";
        g = H5Gcreate2(r, "fc1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        const char *wn[2] = {"fc1_W_1:0", "fc1_b_1:0"};
        support_h5_strings(g, "weight_names", wn, 2, how & W_VLEN);
        hsize_t k[2] = {8, 4}, nb = 4;
        h5_dataset(g, wn[0], 2, k, H5T_IEEE_F32LE);
        h5_dataset(g, wn[1], 1, &nb, H5T_IEEE_F32LE);
        H5Gclose(g);
    }
    if (!(how & W_NO_NAMES)) {
        if (how & W_SPLIT) {
            support_h5_strings(r, "layer_names0", names, nn / 2, how & W_VLEN);
            support_h5_strings(r, "layer_names1", names + nn / 2, nn - nn / 2, how & W_VLEN);
        } else {
            support_h5_strings(r, "layer_names", names, nn, how & W_VLEN);
        }
    }
    if (r != f)
        H5Gclose(r);
    H5Fclose(f);
}

static void gen_weights(void) {
    gen_weights_file("legacy.h5", 0);
    gen_weights_file("nested_vlen.h5", W_NESTED | W_VLEN);
    gen_weights_file("model_top.h5", W_MODEL | W_TOP | W_NESTED);
    gen_weights_file("split_names.h5", W_SPLIT);
    gen_weights_file("bad_shape.h5", W_BAD_SHAPE | W_NLAYERS3);
    gen_weights_file("int_kernel.h5", W_INT | W_NLAYERS3);
    gen_weights_file("f64_kernel.h5", W_F64 | W_NLAYERS3 | W_VLEN);
    gen_weights_file("no_layer_names.h5", W_NO_NAMES | W_NLAYERS3);
    gen_weights_file("no_group.h5", W_NO_GROUP | W_NLAYERS3);
    gen_weights_file("one_weight.h5", W_ONE_WEIGHT | W_NLAYERS3 | W_NESTED);
    gen_weights_file("three_layers.h5", W_NLAYERS3);
    /* legacy.h5 with its superblock's base address moved: H5Fopen fails
     * with "addr overflow" and, in libhdf5 1.10, leaks an object that made
     * its shutdown at exit print junk to stderr (found by fuzz_weights). */
    FILE *f = fopen(path_in("weights", "legacy.h5"), "rb");
    unsigned char sb[1 << 16];
    size_t n = f ? fread(sb, 1, sizeof sb, f) : 0;
    if (f)
        fclose(f);
    if (n > 32) {
        sb[21] = sb[22] = sb[23] = 0xff, sb[24] = 5;
        write_file(path_in("weights", "damaged_superblock.h5"), sb, n, NULL, 0);
    }
    write_file(path_in("weights", "not_hdf5.h5"), "not an HDF5 file\n", 17, NULL, 0);
    write_file(path_in("weights", "signature_only.h5"), "\x89HDF\r\n\x1a\n", 8, NULL, 0);
}

/* ---- onnx ---------------------------------------------------------------- */

static void onnx_seed(const char *name, ow_model *m) {
    size_t len;
    uint8_t *buf = ow_bytes(m, &len);
    write_file(path_in("onnx", name), buf, len, NULL, 0);
}

static void gen_onnx(void) {
    static float w[16 * 16 * 3 * 3], b[64];
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        w[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < 64; i++)
        b[i] = 0.01f * (float)i;
    const int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, p1[4] = {1, 1, 1, 1}, one[1] = {8},
                  wd[2] = {8, 4}, shape[1] = {2};
    ow_model m;
    /* inception-like: conv, relu, pool (ceil), two branches, concat, LRN,
     * global pool, flatten, gemm, softmax */
    ow_model_init(&m, "data", 3, 32, 32);
    Onnx__NodeProto *n = ow_conv(&m, "c1", "data", "c1p", 3, 8, 3, 3, 1, w, b);
    ow_ints(n, "strides", 2, s2);
    ow_ints(n, "pads", 4, p1);
    const char *x = "c1p";
    ow_node(&m, "Relu", "r1", 1, &x, "r1");
    x = "r1";
    n = ow_node(&m, "MaxPool", "p1", 1, &x, "p1");
    ow_ints(n, "kernel_shape", 2, k3);
    ow_ints(n, "strides", 2, s2);
    ow_int(n, "ceil_mode", 1);
    ow_conv(&m, "b1", "p1", "b1", 8, 4, 1, 1, 1, w, b);
    n = ow_conv(&m, "b2", "p1", "b2", 8, 4, 3, 3, 2, w, b);
    ow_ints(n, "pads", 4, p1);
    const char *cat[2] = {"b1", "b2"};
    n = ow_node(&m, "Concat", "cat", 2, cat, "cat");
    ow_int(n, "axis", 1);
    x = "cat";
    n = ow_node(&m, "LRN", "lrn", 1, &x, "lrn");
    ow_int(n, "size", 5);
    x = "lrn";
    ow_node(&m, "GlobalAveragePool", "gap", 1, &x, "gap");
    x = "gap";
    ow_node(&m, "Flatten", "flat", 1, &x, "flat");
    ow_init(&m, "fcW", 2, wd, w, sizeof(float) * 32, 1);
    const int64_t bd[1] = {4};
    ow_init(&m, "fcB", 1, bd, b, sizeof(float) * 4, 1);
    const char *fc[3] = {"flat", "fcW", "fcB"};
    ow_node(&m, "Gemm", "fc", 3, fc, "fc");
    x = "fc";
    ow_node(&m, "Softmax", "prob", 1, &x, "prob");
    onnx_seed("inception.onnx", &m);

    /* conv + BN, residual Add, Clip with constant inputs, average pool,
     * Reshape with a Constant shape, MatMul, Dropout */
    ow_model_init(&m, "x", 3, 16, 16);
    n = ow_conv(&m, "c", "x", "c", 3, 8, 3, 3, 1, w, b);
    ow_ints(n, "pads", 4, p1);
    ow_init(&m, "s", 1, one, b + 1, 32, 1);
    const char *bn[5] = {"c", "s", "s", "s", "s"};
    ow_node(&m, "BatchNormalization", "bn", 5, bn, "bn");
    const char *add[2] = {"bn", "bn"};
    ow_node(&m, "Add", "add", 2, add, "add");
    const int64_t scalar[1] = {1};
    ow_init(&m, "lo", 0, scalar, b, 4, 1);
    ow_init(&m, "hi", 0, scalar, b + 60, 4, 1);
    const char *clip[3] = {"add", "lo", "hi"};
    ow_node(&m, "Clip", "clip", 3, clip, "clip");
    x = "clip";
    n = ow_node(&m, "AveragePool", "ap", 1, &x, "ap");
    ow_ints(n, "kernel_shape", 2, k3);
    ow_ints(n, "strides", 2, s2);
    ow_ints(n, "pads", 4, p1);
    ow_int(n, "count_include_pad", 1);
    x = "ap";
    ow_node(&m, "Dropout", "drop", 1, &x, "drop");
    const int64_t sh[2] = {0, -1};
    ow_init(&m, "shape", 1, shape, sh, sizeof sh, 7);
    const char *rs[2] = {"drop", "shape"};
    ow_node(&m, "Reshape", "rs", 2, rs, "rs");
    const int64_t mw[2] = {512, 4};
    static float big[512 * 4];
    ow_init(&m, "mm", 2, mw, big, sizeof big, 1);
    const char *mm[2] = {"rs", "mm"};
    ow_node(&m, "MatMul", "matmul", 2, mm, "out");
    onnx_seed("resnetish.onnx", &m);
    ow_free();
    write_file(path_in("onnx", "empty.onnx"), "", 0, NULL, 0);
    write_file(path_in("onnx", "text.onnx"), "not a protobuf\n", 15, NULL, 0);
}

/* Exif APP1 payloads (fuzz_exif): byte order be, IFD0 with Make,
 * Orientation o (none if 0) and an Exif IFD pointer, then the Exif IFD and
 * an IFD1 with its own Orientation 8. */
static void exif_seed(const char *name, int be, int o) {
    const support_tiff_entry all[3] = {
        {0x010F, 2, 6, 50}, {0x0112, 3, 1, (uint32_t)o}, {0x8769, 4, 1, 56}};
    const support_tiff_entry none[2] = {all[0], all[2]};
    /* from the end of IFD0 (50, or 38 without Orientation: zeros up to 50)
     * to 92: Make's text at 50, the Exif IFD at 56, IFD1 at 74 */
    const int pad = o ? 0 : 12;
    unsigned char tail[12 + 42] = {0}, b[128];
    unsigned char *make = tail + pad, *x = make + 6, *ifd1 = make + 24;
    memcpy(make, "Maker", 6);
    support_tiff_put(x, 2, 1, be); /* the Exif IFD: ExposureTime, no next */
    support_tiff_put(x + 2, 2, 0x829A, be);
    support_tiff_put(x + 4, 2, 5, be);
    support_tiff_put(x + 6, 4, 1, be);
    support_tiff_put(ifd1, 2, 1, be); /* IFD1: Orientation 8, no next */
    support_tiff_put(ifd1 + 2, 2, 0x0112, be);
    support_tiff_put(ifd1 + 4, 2, 3, be);
    support_tiff_put(ifd1 + 6, 4, 1, be);
    support_tiff_put(ifd1 + 10, 2, 8, be);
    size_t n = support_exif_block(b, be, o ? all : none, o ? 3 : 2, 74, tail, (size_t)pad + 42);
    write_file(path_in("exif", name), b, n, NULL, 0);
}

static void gen_exif(void) {
    exif_seed("ii-1.exif", 0, 1);
    exif_seed("ii-6.exif", 0, 6);
    exif_seed("mm-3.exif", 1, 3);
    exif_seed("mm-none.exif", 1, 0);
    exif_seed("ii-9.exif", 0, 9);
    write_file(path_in("exif", "bare.exif"), "Exif", 4, NULL, 0);
    write_file(path_in("exif", "header.exif"), "Exif\0\0II*\0\x08\0\0\0", 14, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    snprintf(root, sizeof root, "%s", argv[1]);
    const char *subs[] = {"", "/npy", "/vec", "/weights", "/onnx", "/exif"};
    for (int i = 0; i < 6; i++) {
        char d[4200];
        snprintf(d, sizeof d, "%s%s", root, subs[i]);
        if (mkdir(d, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "gen_seeds: mkdir %s: %s\n", d, strerror(errno));
            return 1;
        }
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    gen_npy();
    gen_vec();
    gen_weights();
    gen_onnx();
    gen_exif();
    return 0;
}
