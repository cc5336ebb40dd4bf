/*
 * test_npy: the .npy reader against the real GoogLeNet embeddings (values
 * recorded with numpy) and against hand-made files for every way a file can
 * be wrong: dtype, byte order, rank, Fortran order, truncation, trailing
 * bytes, a broken header, a bad magic.
 */
#include "check.h"
#include "npy.h"

#include <stdint.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/bn-test-npy.XXXXXX";

/* Write magic + version + header (padded as numpy does) + nbytes of data. */
static const char *write_npy(const char *name, int major, const char *dict, const void *data,
                             size_t nbytes) {
    static char path[8][512];
    static int slot;
    char *p = path[slot++ & 7];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    size_t prefix = major == 1 ? 10 : 12;
    size_t len = strlen(dict) + 1;
    size_t pad = (64 - (prefix + len) % 64) % 64;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    uint32_t hl = (uint32_t)(len + pad);
    fputc(hl & 0xff, f);
    fputc((hl >> 8) & 0xff, f);
    if (major != 1) {
        fputc((hl >> 16) & 0xff, f);
        fputc(hl >> 24, f);
    }
    fputs(dict, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    if (nbytes)
        fwrite(data, 1, nbytes, f);
    fclose(f);
    return p;
}

static int open_fails(const char *path, const char *needle) {
    bn_npy npy;
    bn_error err = {0};
    int rc = bn_npy_open(&npy, path, &err);
    if (rc == BN_OK) {
        bn_npy_close(&npy);
        fprintf(stderr, "  %s: opened, expected an error with '%s'\n", path, needle);
        return 0;
    }
    int ok = strstr(err.msg, needle) != NULL && strstr(err.msg, path) != NULL &&
             strchr(err.msg, '\n') == NULL;
    if (!ok)
        fprintf(stderr, "  %s: message '%s' lacks '%s' or the path\n", path, err.msg, needle);
    return ok;
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }

    /* The real embeddings: shape from the header, values recorded with
     * numpy 1.24.2: X = np.load('embeddings.npy').astype(np.float64);
     * X[0].sum(), X[1234].sum(), X[2999].sum(), X.sum(), X[1234].max(),
     * X[1234].argmax(). */
    {
        float *x = NULL;
        int64_t rows = 0, dim = 0;
        bn_error err = {0};
        int rc = bn_npy_load(shared_path("features/googlenet/catsdogs/embeddings.npy"), &x, &rows,
                             &dim, &err);
        CHECK_MSG(rc == BN_OK, "%s", err.msg);
        CHECK_INT(rows, 3000);
        CHECK_INT(dim, 1024);
        if (rc == BN_OK) {
            double s0 = 0, s1234 = 0, s2999 = 0, all = 0, mx = -1;
            int amax = -1;
            for (int j = 0; j < 1024; j++) {
                s0 += x[j];
                s1234 += x[1234 * 1024 + j];
                s2999 += x[2999 * 1024 + j];
                if (x[1234 * 1024 + j] > mx)
                    mx = x[1234 * 1024 + j], amax = j;
            }
            for (int64_t i = 0; i < rows * dim; i++)
                all += x[i];
            CHECK_NEAR(s0, 677.031200732119, 1e-9);
            CHECK_NEAR(s1234, 477.3379466915503, 1e-9);
            CHECK_NEAR(s2999, 567.3464632318428, 1e-9);
            CHECK_NEAR(all, 1741304.339524888, 1e-5);
            CHECK_NEAR(mx, 6.8362345695495605, 0);
            CHECK_INT(amax, 710);
        }
        free(x);

        /* Reading in pieces gives the same rows. */
        bn_npy npy;
        rc = bn_npy_open(&npy, shared_path("features/googlenet/catsdogs/embeddings.npy"), &err);
        CHECK(rc == BN_OK);
        if (rc == BN_OK) {
            float row[1024];
            CHECK(bn_npy_read_rows(&npy, 1234, 1, row, &err) == BN_OK);
            CHECK_NEAR(row[710], 6.8362345695495605, 0);
            CHECK(bn_npy_read_rows(&npy, 2999, 2, row, &err) == BN_EINVAL);
            bn_npy_close(&npy);
        }
    }

    /* Round trip through bn_npy_save, and the header numpy would write. */
    {
        float m[6] = {0, 1.5f, -2, 3e-30f, 4e30f, -0.0f};
        char path[600];
        snprintf(path, sizeof path, "%s/saved.npy", tmpdir);
        bn_error err = {0};
        CHECK(bn_npy_save(path, m, 2, 3, &err) == BN_OK);
        float *x = NULL;
        int64_t rows, dim;
        CHECK(bn_npy_load(path, &x, &rows, &dim, &err) == BN_OK);
        CHECK_INT(rows, 2);
        CHECK_INT(dim, 3);
        CHECK(x && memcmp(x, m, sizeof m) == 0);
        free(x);
        FILE *f = fopen(path, "rb");
        char head[128] = {0};
        size_t got = fread(head, 1, 127, f);
        fclose(f);
        CHECK_INT(got, 127);
        CHECK(memcmp(head, "\x93NUMPY\x01\x00", 8) == 0);
        CHECK(strstr(head + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") ==
              head + 10);
        CHECK_INT((10 + (unsigned char)head[8] + 256 * (unsigned char)head[9]) % 64, 0);
    }

    /* Well-formed variants numpy may write. */
    float six[6] = {1, 2, 3, 4, 5, 6};
    {
        const char *p =
            write_npy("v2.npy", 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                      six, sizeof six);
        float *x = NULL;
        int64_t rows, dim;
        bn_error err = {0};
        CHECK_MSG(bn_npy_load(p, &x, &rows, &dim, &err) == BN_OK, "%s", err.msg);
        CHECK(rows == 2 && dim == 3 && x && x[5] == 6);
        free(x);
        p = write_npy("order.npy", 1,
                      "{\"shape\": (3,2), \"fortran_order\": False, "
                      "\"descr\": \"<f4\"}",
                      six, sizeof six);
        CHECK_MSG(bn_npy_load(p, &x, &rows, &dim, &err) == BN_OK, "%s", err.msg);
        CHECK(rows == 3 && dim == 2);
        free(x);
        p = write_npy("long.npy", 1,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 6L), }", six,
                      sizeof six);
        CHECK_MSG(bn_npy_load(p, &x, &rows, &dim, &err) == BN_OK, "%s", err.msg);
        CHECK(rows == 1 && dim == 6);
        free(x);
    }

    /* Everything that must be refused, with the reason in the message. */
    double d6[6] = {1, 2, 3, 4, 5, 6};
    CHECK(open_fails(write_npy("f8.npy", 1,
                               "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d6,
                               sizeof d6),
                     "float64"));
    CHECK(open_fails(write_npy("f2.npy", 1,
                               "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", six,
                               12),
                     "float16"));
    CHECK(open_fails(write_npy("be.npy", 1,
                               "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", six,
                               sizeof six),
                     "big-endian"));
    CHECK(open_fails(write_npy("fortran.npy", 1,
                               "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", six,
                               sizeof six),
                     "Fortran"));
    CHECK(open_fails(write_npy("rank1.npy", 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six,
                               sizeof six),
                     "shape (6,) has 1 dimension, expected 2"));
    CHECK(open_fails(write_npy("rank3.npy", 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }",
                               six, sizeof six),
                     "has 3 dimensions"));
    CHECK(
        open_fails(write_npy("empty.npy", 1,
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", six, 0),
                   "empty"));
    CHECK(open_fails(write_npy("short.npy", 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", six,
                               sizeof six - 4),
                     "truncated"));
    CHECK(open_fails(write_npy("long2.npy", 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", six,
                               sizeof six),
                     "12 bytes after the data"));
    CHECK(open_fails(write_npy("struct.npy", 1,
                               "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                               six, 8),
                     "structured"));
    CHECK(open_fails(
        write_npy("broken.npy", 1, "{'descr': '<f4', 'fortran_order': False, ", six, sizeof six),
        "malformed"));
    /* Text after the dict (numpy refuses it: the header is one literal). The
     * reader once took the dict and ignored the rest (found by fuzz_npy). */
    CHECK(open_fails(write_npy("trailing.npy", 1,
                               "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } "
                               "'shape': (3, 2)",
                               six, sizeof six),
                     "malformed"));
    {
        char path[600];
        snprintf(path, sizeof path, "%s/text.npy", tmpdir);
        FILE *f = fopen(path, "wb");
        fputs("row\tlabel\n0\tcat\n", f);
        fclose(f);
        CHECK(open_fails(path, "not a .npy file"));
        snprintf(path, sizeof path, "%s/tiny.npy", tmpdir);
        f = fopen(path, "wb");
        fwrite("\x93NUMPY\x01\x00\x40\x00{'descr'", 1, 17, f);
        fclose(f);
        CHECK(open_fails(path, "truncated .npy header"));
        snprintf(path, sizeof path, "%s/missing.npy", tmpdir);
        CHECK(open_fails(path, "cannot open"));
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_done();
}
