/*
 * json.h: the JSON writers every program's --json output needs.
 * Writes to the stream the program hands in; nothing else.
 */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stdio.h>

/* A JSON string: quotes, backslashes and control bytes escaped; bytes that
 * are not valid UTF-8 (file names may hold any bytes) become U+FFFD, so the
 * output always parses. NULL is written as null. */
void bn_json_string(FILE *f, const char *s);

/* A number with 10 significant digits; NaN and infinities as null. */
void bn_json_number(FILE *f, double v);

/* The one object a command prints when it cannot go on:
 * {"ok":false,"error":msg} and a newline. */
void bn_json_error(FILE *f, const char *msg);

#endif
