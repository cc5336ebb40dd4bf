/*
 * strset.h: a set of strings (open addressing, linear probing), with an
 * optional string value per key. Used to hold what the database already
 * knows (path -> sha256, sha256s with vectors) in memory during a run.
 */
#ifndef BN_STRSET_H
#define BN_STRSET_H

#include <stddef.h>

typedef struct {
    char **keys;
    char **values;
    size_t cap, n;
} bn_strset;

void bn_strset_init(bn_strset *s);
void bn_strset_free(bn_strset *s);
/* Insert (copying key and value; value may be NULL). Replaces the value of
 * an existing key. Returns 0, or -1 when out of memory. */
int bn_strset_put(bn_strset *s, const char *key, const char *value);
int bn_strset_has(const bn_strset *s, const char *key);
/* The value stored with key, or NULL. */
const char *bn_strset_get(const bn_strset *s, const char *key);

#endif
