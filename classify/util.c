/*
 * util.c: what every command of bottleneck-classify shares to report a
 * failure and open the database. Kept apart from main.c so that the cmd_*.c
 * files do not depend on the file that dispatches to them.
 */
#include "classify.h"

#include <stdarg.h>
#include <stdio.h>

/* --json: a fatal error is also one object on stdout, {"ok":false,
 * "error":...}, so that a script reading stdout always gets one. */
static int fail_json;

void cl_fail_json(int on) {
    fail_json = on;
}

int cl_fail(const char *msg) {
    fprintf(stderr, "bottleneck-classify: %s\n", msg);
    if (fail_json) {
        bn_json_error(stdout, msg);
    }
    return CL_EXIT_FATAL;
}

int cl_failf(const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cl_fail(msg);
}

int cl_open(const cl_opts *o, int readonly, bn_store **s) {
    bn_error err;
    bn_error_clear(&err);
    if (bn_store_open(s, o->db, readonly ? BN_STORE_READONLY : 0, &err) != BN_OK)
        return cl_fail(err.msg);
    return 0;
}
