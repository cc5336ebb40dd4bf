/*
 * npy.c: reading and writing float32 (rows, dim) .npy files (see npy.h).
 *
 * The .npy layout: the magic "\x93NUMPY", a major and a minor version byte, the
 * header length (uint16 little-endian in version 1.0, uint32 in 2.0 and 3.0),
 * then the header: a Python dict literal such as
 *
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3000, 1024), }
 *
 * padded with spaces and a final '\n', then the raw values. The header is
 * parsed strictly (a small recursive-descent reader of just that grammar)
 * rather than searched for substrings, so a structured dtype or a nested
 * shape is reported, not misread.
 */
#include "npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1 << 20)

static int npy_host_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void npy_swap32(float *v, int64_t n) {
    uint32_t *u = (uint32_t *)v;
    for (int64_t i = 0; i < n; i++)
        u[i] = __builtin_bswap32(u[i]);
}

/* ---- header parser ------------------------------------------------------ */

typedef struct {
    const char *p, *end;
    char descr[64];
    int have_descr, have_order, have_shape;
    int fortran;
    int ndim;
    int64_t shape[8];
} npy_header;

static void npy_ws(npy_header *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int npy_eat(npy_header *h, char c) {
    npy_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return 1;
    }
    return 0;
}

/* A Python string literal in single or double quotes (no escapes needed by
 * any header numpy writes). */
static int npy_string(npy_header *h, char *out, size_t n) {
    npy_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return -1;
    char q = *h->p++;
    size_t len = 0;
    while (h->p < h->end && *h->p != q) {
        /* A NUL would end the C string early: 'shape\0junk' read as
         * 'shape', a key numpy does not know (found by fuzz_npy). */
        if (len + 1 >= n || *h->p == '\0')
            return -1;
        out[len++] = *h->p++;
    }
    if (h->p >= h->end)
        return -1;
    h->p++;
    out[len] = '\0';
    return 0;
}

static int npy_word(npy_header *h, const char *w) {
    npy_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

static int npy_shape(npy_header *h) {
    if (!npy_eat(h, '('))
        return -1;
    h->ndim = 0;
    for (;;) {
        if (npy_eat(h, ')'))
            return 0;
        npy_ws(h);
        int64_t v = 0;
        int digits = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (*h->p++ - '0');
            digits++;
        }
        if (!digits || h->ndim >= 8)
            return -1;
        /* Python 2 era headers may write longs as 3000L. */
        if (h->p < h->end && *h->p == 'L')
            h->p++;
        h->shape[h->ndim++] = v;
        if (!npy_eat(h, ',')) {
            if (!npy_eat(h, ')'))
                return -1;
            return 0;
        }
    }
}

static int npy_parse_header(npy_header *h) {
    if (!npy_eat(h, '{'))
        return -1;
    for (;;) {
        if (npy_eat(h, '}'))
            break;
        char key[32];
        if (npy_string(h, key, sizeof key) != 0 || !npy_eat(h, ':'))
            return -1;
        if (strcmp(key, "descr") == 0) {
            npy_ws(h);
            if (h->p < h->end && *h->p == '[') {
                snprintf(h->descr, sizeof h->descr, "structured");
                return -2;
            }
            if (npy_string(h, h->descr, sizeof h->descr) != 0)
                return -1;
            h->have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (npy_word(h, "True"))
                h->fortran = 1;
            else if (npy_word(h, "False"))
                h->fortran = 0;
            else
                return -1;
            h->have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (npy_shape(h) != 0)
                return -1;
            h->have_shape = 1;
        } else {
            return -1;
        }
        if (!npy_eat(h, ',')) {
            if (!npy_eat(h, '}'))
                return -1;
            break;
        }
    }
    /* Nothing but the padding after the dict: numpy evaluates the whole
     * header as one literal and refuses trailing text, so must we (found by
     * fuzz_npy: a second, different 'shape' after the closing brace). */
    npy_ws(h);
    if (h->p != h->end)
        return -1;
    return (h->have_descr && h->have_order && h->have_shape) ? 0 : -1;
}

static const char *npy_dtype_name(const char *d) {
    static const struct {
        const char *code, *name;
    } names[] = {{"f8", "float64"}, {"f2", "float16"},  {"f4", "float32"}, {"i1", "int8"},
                 {"i2", "int16"},   {"i4", "int32"},    {"i8", "int64"},   {"u1", "uint8"},
                 {"u2", "uint16"},  {"u4", "uint32"},   {"u8", "uint64"},  {"b1", "bool"},
                 {"O", "object"},   {"c8", "complex64"}};
    const char *code = (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=') ? d + 1 : d;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(code, names[i].code) == 0)
            return names[i].name;
    return "unknown type";
}

static void npy_shape_text(const npy_header *h, char *out, size_t n) {
    size_t len = 0;
    len += snprintf(out + len, n - len, "(");
    for (int i = 0; i < h->ndim && len < n; i++)
        len += snprintf(out + len, n - len, "%s%lld", i ? ", " : "", (long long)h->shape[i]);
    if (len < n)
        snprintf(out + len, n - len, h->ndim == 1 ? ",)" : ")");
}

/* ---- public functions --------------------------------------------------- */

int bn_npy_open(bn_npy *npy, const char *path, bn_error *err) {
    memset(npy, 0, sizeof *npy);
    snprintf(npy->path, sizeof npy->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return bn_fail(err, BN_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = BN_OK;
    char *text = NULL;
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 8 || memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        rc = bn_fail(err, BN_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    int major = pre[6], minor = pre[7];
    int64_t header_len, prefix;
    if (major == 1) {
        if (got < 10)
            goto truncated;
        header_len = pre[8] | (pre[9] << 8);
        prefix = 10;
    } else if (major == 2 || major == 3) {
        if (got < 10 || fread(pre + 10, 1, 2, f) != 2)
            goto truncated;
        header_len = (int64_t)pre[8] | ((int64_t)pre[9] << 8) | ((int64_t)pre[10] << 16) |
                     ((int64_t)pre[11] << 24);
        prefix = 12;
    } else {
        rc = bn_fail(err, BN_EFORMAT, "%s: unsupported .npy format version %d.%d", path, major,
                     minor);
        goto done;
    }
    if (header_len <= 0 || header_len > NPY_MAX_HEADER) {
        rc = bn_fail(err, BN_EFORMAT, "%s: implausible .npy header length %lld", path,
                     (long long)header_len);
        goto done;
    }
    text = malloc((size_t)header_len);
    if (!text) {
        rc = bn_fail(err, BN_ENOMEM, "%s: out of memory reading the header", path);
        goto done;
    }
    if (fread(text, 1, (size_t)header_len, f) != (size_t)header_len)
        goto truncated;

    npy_header h = {.p = text, .end = text + header_len};
    int prc = npy_parse_header(&h);
    if (prc == -2) {
        rc = bn_fail(err, BN_EFORMAT, "%s: structured dtype, expected '<f4' (float32)", path);
        goto done;
    }
    if (prc != 0) {
        rc = bn_fail(err, BN_EFORMAT, "%s: malformed .npy header: %.*s", path,
                     (int)(header_len > 120 ? 120 : header_len), text);
        goto done;
    }
    if (strcmp(h.descr, "<f4") != 0) {
        if (strcmp(h.descr, ">f4") == 0)
            rc = bn_fail(err, BN_EFORMAT,
                         "%s: dtype '>f4' is big-endian float32, expected little-endian '<f4'",
                         path);
        else
            rc = bn_fail(err, BN_EFORMAT, "%s: dtype '%s' (%s), expected '<f4' (float32)", path,
                         h.descr, npy_dtype_name(h.descr));
        goto done;
    }
    char shape[160];
    npy_shape_text(&h, shape, sizeof shape);
    if (h.ndim != 2) {
        rc = bn_fail(err, BN_EFORMAT, "%s: shape %s has %d dimension%s, expected 2 (rows, dim)",
                     path, shape, h.ndim, h.ndim == 1 ? "" : "s");
        goto done;
    }
    if (h.shape[0] < 1 || h.shape[1] < 1) {
        rc = bn_fail(err, BN_EFORMAT, "%s: shape %s is empty", path, shape);
        goto done;
    }
    if (h.fortran) {
        rc = bn_fail(err, BN_EFORMAT,
                     "%s: Fortran (column-major) order, expected C order "
                     "(save numpy.ascontiguousarray(a))",
                     path);
        goto done;
    }
    if (h.shape[0] > INT64_MAX / 4 / h.shape[1]) {
        rc = bn_fail(err, BN_EFORMAT, "%s: shape %s is too large", path, shape);
        goto done;
    }
    int64_t need = h.shape[0] * h.shape[1] * 4;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = bn_fail(err, BN_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    int64_t have = (int64_t)st.st_size - prefix - header_len;
    if (have < need) {
        rc = bn_fail(err, BN_EFORMAT,
                     "%s: truncated: shape %s needs %lld bytes of float32 data, the file has %lld",
                     path, shape, (long long)need, (long long)have);
        goto done;
    }
    if (have > need) {
        rc = bn_fail(err, BN_EFORMAT,
                     "%s: %lld bytes after the data of shape %s: wrong shape in the header?", path,
                     (long long)(have - need), shape);
        goto done;
    }
    npy->f = f;
    npy->rows = h.shape[0];
    npy->dim = h.shape[1];
    npy->data_offset = prefix + header_len;
    free(text);
    return BN_OK;

truncated:
    rc = bn_fail(err, BN_EFORMAT, "%s: truncated .npy header", path);
done:
    free(text);
    fclose(f);
    return rc;
}

void bn_npy_close(bn_npy *npy) {
    if (npy->f)
        fclose(npy->f);
    npy->f = NULL;
}

int bn_npy_read_rows(bn_npy *npy, int64_t start, int64_t count, float *out, bn_error *err) {
    if (!npy->f || start < 0 || count < 0 || start + count > npy->rows)
        return bn_fail(err, BN_EINVAL, "%s: rows [%lld, %lld) out of range (%lld rows)", npy->path,
                       (long long)start, (long long)(start + count), (long long)npy->rows);
    if (count == 0)
        return BN_OK;
    if (fseeko(npy->f, (off_t)(npy->data_offset + start * npy->dim * 4), SEEK_SET) != 0)
        return bn_fail(err, BN_EIO, "%s: cannot seek: %s", npy->path, strerror(errno));
    size_t n = (size_t)(count * npy->dim);
    if (fread(out, 4, n, npy->f) != n)
        return bn_fail(err, BN_EIO, "%s: read failed at row %lld%s", npy->path, (long long)start,
                       ferror(npy->f) ? "" : " (file shrank while reading)");
    if (!npy_host_little_endian())
        npy_swap32(out, (int64_t)n);
    return BN_OK;
}

int bn_npy_load(const char *path, float **data, int64_t *rows, int64_t *dim, bn_error *err) {
    bn_npy npy;
    *data = NULL;
    int rc = bn_npy_open(&npy, path, err);
    if (rc)
        return rc;
    float *buf = malloc((size_t)(npy.rows * npy.dim) * sizeof *buf);
    if (!buf) {
        bn_npy_close(&npy);
        return bn_fail(err, BN_ENOMEM, "%s: out of memory for %lld x %lld floats", path,
                       (long long)npy.rows, (long long)npy.dim);
    }
    rc = bn_npy_read_rows(&npy, 0, npy.rows, buf, err);
    bn_npy_close(&npy);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *rows = npy.rows;
    *dim = npy.dim;
    return BN_OK;
}

int bn_npy_create(bn_npy_writer *w, const char *path, int64_t rows, int64_t dim, bn_error *err) {
    memset(w, 0, sizeof *w);
    if (rows < 0 || dim < 1)
        return bn_fail(err, BN_EINVAL, "%s: cannot save a (%lld, %lld) matrix", path,
                       (long long)rows, (long long)dim);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp.XXXXXX", path);
    w->rows = rows;
    w->dim = dim;
    int fd = mkstemp(w->tmp);
    if (fd < 0)
        return bn_fail(err, BN_EIO, "%s: cannot create a temporary file: %s", path,
                       strerror(errno));
    w->f = fdopen(fd, "wb");
    if (!w->f) {
        int e = errno;
        close(fd);
        unlink(w->tmp);
        return bn_fail(err, BN_EIO, "%s: %s", path, strerror(e));
    }
    /* Header padded with spaces so that magic + 2 + 2 + header is a multiple
     * of 64 bytes, ending in '\n', as numpy writes it. */
    char header[256];
    int len = snprintf(header, sizeof header,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)rows, (long long)dim);
    int total = NPY_MAGIC_LEN + 4 + len + 1;
    int pad = (64 - total % 64) % 64;
    memset(header + len, ' ', (size_t)pad);
    len += pad;
    header[len++] = '\n';
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    if (fwrite(pre, 1, 10, w->f) != 10 || fwrite(header, 1, (size_t)len, w->f) != (size_t)len) {
        int e = errno;
        bn_npy_abort(w);
        return bn_fail(err, BN_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return BN_OK;
}

int bn_npy_write_rows(bn_npy_writer *w, const float *data, int64_t count, bn_error *err) {
    size_t n = (size_t)(count * w->dim);
    int ok = 1;
    if (npy_host_little_endian()) {
        ok = fwrite(data, 4, n, w->f) == n;
    } else {
        for (size_t i = 0; ok && i < n; i++) {
            float v = data[i];
            npy_swap32(&v, 1);
            ok = fwrite(&v, 4, 1, w->f) == 1;
        }
    }
    if (!ok) {
        int e = errno;
        bn_npy_abort(w);
        return bn_fail(err, BN_EIO, "%s: cannot write: %s", w->path, strerror(e));
    }
    w->written += count;
    return BN_OK;
}

int bn_npy_commit(bn_npy_writer *w, bn_error *err) {
    if (w->written != w->rows) {
        bn_npy_abort(w);
        return bn_fail(err, BN_EINVAL, "%s: %lld rows written, the header says %lld", w->path,
                       (long long)w->written, (long long)w->rows);
    }
    int ok = fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
    if (fclose(w->f) != 0)
        ok = 0;
    w->f = NULL;
    if (!ok || rename(w->tmp, w->path) != 0) {
        int e = errno;
        unlink(w->tmp);
        return bn_fail(err, BN_EIO, "%s: cannot write: %s", w->path, strerror(e));
    }
    return BN_OK;
}

void bn_npy_abort(bn_npy_writer *w) {
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
        unlink(w->tmp);
    }
}

int bn_npy_save(const char *path, const float *data, int64_t rows, int64_t dim, bn_error *err) {
    if (rows < 1 || dim < 1)
        return bn_fail(err, BN_EINVAL, "%s: cannot save an empty (%lld, %lld) matrix", path,
                       (long long)rows, (long long)dim);
    bn_npy_writer w;
    int rc = bn_npy_create(&w, path, rows, dim, err);
    if (!rc)
        rc = bn_npy_write_rows(&w, data, rows, err);
    if (!rc)
        rc = bn_npy_commit(&w, err);
    return rc;
}
