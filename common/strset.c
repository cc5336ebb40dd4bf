/*
 * strset.c: string set / map (see strset.h). FNV-1a hashing, power-of-two
 * capacity, grown at 50% load so probes stay short.
 */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void bn_strset_init(bn_strset *s) {
    memset(s, 0, sizeof *s);
}

void bn_strset_free(bn_strset *s) {
    for (size_t i = 0; i < s->cap; i++) {
        free(s->keys[i]);
        free(s->values[i]);
    }
    free(s->keys);
    free(s->values);
    memset(s, 0, sizeof *s);
}

static size_t slot(const bn_strset *s, const char *key) {
    size_t i = (size_t)hash(key) & (s->cap - 1);
    while (s->keys[i] && strcmp(s->keys[i], key) != 0)
        i = (i + 1) & (s->cap - 1);
    return i;
}

static int grow(bn_strset *s) {
    bn_strset big = {.cap = s->cap ? 2 * s->cap : 64};
    big.keys = calloc(big.cap, sizeof *big.keys);
    big.values = calloc(big.cap, sizeof *big.values);
    if (!big.keys || !big.values) {
        free(big.keys);
        free(big.values);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->keys[i]) {
            size_t j = slot(&big, s->keys[i]);
            big.keys[j] = s->keys[i];
            big.values[j] = s->values[i];
        }
    }
    big.n = s->n;
    free(s->keys);
    free(s->values);
    *s = big;
    return 0;
}

int bn_strset_put(bn_strset *s, const char *key, const char *value) {
    if (2 * (s->n + 1) > s->cap && grow(s))
        return -1;
    size_t i = slot(s, key);
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return -1;
    if (!s->keys[i]) {
        if (!(s->keys[i] = strdup(key))) {
            free(v);
            return -1;
        }
        s->n++;
    }
    free(s->values[i]);
    s->values[i] = v;
    return 0;
}

int bn_strset_has(const bn_strset *s, const char *key) {
    return s->cap && s->keys[slot(s, key)] != NULL;
}

const char *bn_strset_get(const bn_strset *s, const char *key) {
    return s->cap ? s->values[slot(s, key)] : NULL;
}
