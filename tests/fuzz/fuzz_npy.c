/*
 * fuzz_npy.c: libFuzzer harness for the .npy reader (common/npy.c): the
 * input is a .npy file. Whatever it holds, bn_npy_open either accepts a
 * (rows, dim) float32 matrix or fails with one line; when it accepts, what it
 * returns is checked against the file's own bytes, read here without the
 * reader's parser:
 *
 * - the data starts right after the header the prefix declares (10 + the
 *   uint16 length in version 1, 12 + the uint32 length in versions 2 and 3)
 *   and fills the rest of the file exactly: offset + rows*dim*4 = size;
 * - the header says '<f4' and its last 'shape' key holds exactly (rows, dim);
 * - every value read, row by row, in one piece, and by bn_npy_load, is the
 *   file's bytes at its place (compared as bytes: NaNs too);
 * - reading past the last row is refused.
 */
#include "fuzz.h"
#include "npy.h"

#include <string.h>

/* The shape the header's last 'shape' key holds, if it is two integers;
 * a simple scan, independent of npy.c's parser. */
static int header_shape(const char *h, size_t n, long long *rows, long long *dim) {
    const char *key = NULL;
    for (size_t i = 0; i + 6 <= n; i++)
        if (memcmp(h + i, "shape", 5) == 0 && (h[i + 5] == '\'' || h[i + 5] == '"'))
            key = h + i;
    if (!key)
        return 0;
    const char *end = h + n, *p = memchr(key, '(', (size_t)(end - key));
    if (!p)
        return 0;
    long long v[2];
    p++;
    for (int k = 0; k < 2; k++) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ','))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return 0;
        v[k] = 0;
        while (p < end && *p >= '0' && *p <= '9')
            v[k] = v[k] * 10 + (*p++ - '0');
        if (p < end && *p == 'L')
            p++;
    }
    *rows = v[0];
    *dim = v[1];
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    bn_npy npy;
    bn_error err = {0};
    if (bn_npy_open(&npy, path, &err) != BN_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* the contract: one non-empty line */
        /* Refused by open: refused by load too. */
        float *all = NULL;
        int64_t rows, dim;
        if (bn_npy_load(path, &all, &rows, &dim, &err) == BN_OK)
            abort();
        return 0;
    }
    /* Accepted: the header as the prefix declares it, the data filling the
     * rest of the file exactly. */
    if (size < 12 || npy.rows < 1 || npy.dim < 1)
        abort();
    size_t prefix = data[6] == 1 ? 10 : 12;
    size_t hlen = data[6] == 1 ? (size_t)(data[8] | data[9] << 8)
                               : (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
                                     (size_t)data[11] << 24;
    if (npy.data_offset != (int64_t)(prefix + hlen) || prefix + hlen > size ||
        (int64_t)(size - prefix - hlen) != npy.rows * npy.dim * 4)
        abort();
    const char *header = (const char *)data + prefix;
    long long hrows, hdim;
    if (!memmem(header, hlen, "<f4", 3) || !header_shape(header, hlen, &hrows, &hdim) ||
        hrows != npy.rows || hdim != npy.dim)
        abort();
    const uint8_t *values = data + npy.data_offset;
    size_t row_bytes = (size_t)npy.dim * 4;
    float *row = malloc(row_bytes);
    if (row) {
        for (int64_t r = 0; r < npy.rows && r < 64; r++)
            if (bn_npy_read_rows(&npy, r, 1, row, &err) != BN_OK ||
                memcmp(row, values + r * row_bytes, row_bytes) != 0)
                abort();
        /* Out of range is refused, not read. */
        if (bn_npy_read_rows(&npy, npy.rows, 1, row, &err) == BN_OK)
            abort();
        free(row);
    }
    bn_npy_close(&npy);
    float *all;
    int64_t rows, dim;
    if (bn_npy_load(path, &all, &rows, &dim, &err) == BN_OK) {
        if (rows != npy.rows || dim != npy.dim ||
            memcmp(all, values, (size_t)(rows * dim * 4)) != 0)
            abort();
        free(all);
    } else if (size < (size_t)1 << 28) {
        abort(); /* open accepted it, and it is small enough to load */
    }
    return 0;
}
