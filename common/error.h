/*
 * error.h: errors as values.
 *
 * Library code in common/ never prints and never exits. A function that can
 * fail returns 0 on success or a BN_E* code, and fills a caller-owned
 * bn_error with one line that names the file and the problem, e.g.
 *
 *   "weights.h5: block3_conv1 kernel has shape (3,3,64,256), expected (3,3,128,256)"
 *
 * Programs (extract/, classify/) decide what to print and how to exit.
 */
#ifndef BN_ERROR_H
#define BN_ERROR_H

enum {
    BN_OK = 0,
    BN_EINVAL,    /* bad argument or option value */
    BN_EIO,       /* a file could not be read or written */
    BN_EFORMAT,   /* a file is not what it should be (weights, npy, tsv) */
    BN_EDECODE,   /* an image could not be decoded */
    BN_ENOMEM,    /* allocation failed */
    BN_EDB,       /* SQLite error: corrupt, read-only, locked, ... */
    BN_ENET,      /* download failed */
    BN_ECHECKSUM, /* downloaded bytes do not match the expected hash */
    BN_EINTR      /* stopped on request (a signal): what was done is kept */
};

typedef struct bn_error {
    int code;
    char msg[1024];
} bn_error;

/* Record an error (printf-style message, one line) and return its code.
 * err may be NULL, then only the code is returned. */
int bn_fail(bn_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reset err to "no error". */
void bn_error_clear(bn_error *err);

/* Human name of a code ("I/O error", ...). */
const char *bn_strcode(int code);

#endif
