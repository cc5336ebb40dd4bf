/*
 * error.c: formatting of bn_error values (see error.h).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int bn_fail(bn_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        /* One line: callers print msg as is, so fold any newline a
         * decoder or SQLite put into its text. */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
        size_t n = strlen(err->msg);
        while (n > 0 && err->msg[n - 1] == ' ')
            err->msg[--n] = '\0';
        err->code = code;
    }
    return code;
}

void bn_error_clear(bn_error *err) {
    if (err) {
        err->code = BN_OK;
        err->msg[0] = '\0';
    }
}

const char *bn_strcode(int code) {
    switch (code) {
    case BN_OK: return "ok";
    case BN_EINVAL: return "invalid argument";
    case BN_EIO: return "I/O error";
    case BN_EFORMAT: return "bad file format";
    case BN_EDECODE: return "cannot decode image";
    case BN_ENOMEM: return "out of memory";
    case BN_EDB: return "database error";
    case BN_ENET: return "download failed";
    case BN_ECHECKSUM: return "checksum mismatch";
    case BN_EINTR: return "interrupted";
    default: return "unknown error";
    }
}
