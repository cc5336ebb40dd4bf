/*
 * fuzz_npy.c: libFuzzer harness for the .npy reader (common/npy.c): the
 * input is a .npy file. Whatever it holds, bn_npy_open either accepts a
 * (rows, dim) float32 matrix whose size matches the file exactly, or fails
 * with one line; reading accepted rows, in pieces or whole, never reads past
 * the file.
 */
#include "fuzz.h"
#include "npy.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_as_file(data, size);
    bn_npy npy;
    bn_error err = {0};
    if (bn_npy_open(&npy, path, &err) != BN_OK) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            abort(); /* the contract: one non-empty line */
        return 0;
    }
    /* Accepted: the data must be in the file (checked by open). */
    if (npy.rows < 1 || npy.dim < 1 || npy.rows * npy.dim * 4 > (int64_t)size)
        abort();
    float *row = malloc((size_t)npy.dim * sizeof *row);
    if (row) {
        for (int64_t r = 0; r < npy.rows && r < 64; r++)
            if (bn_npy_read_rows(&npy, r, 1, row, &err) != BN_OK)
                abort();
        /* Out of range is refused, not read. */
        if (bn_npy_read_rows(&npy, npy.rows, 1, row, &err) == BN_OK)
            abort();
        free(row);
    }
    bn_npy_close(&npy);
    float *all;
    int64_t rows, dim;
    if (bn_npy_load(path, &all, &rows, &dim, &err) == BN_OK)
        free(all);
    return 0;
}
