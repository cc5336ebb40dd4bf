/*
 * test_strset: the string set (common/strset.c) against a plain reference:
 * 20,000 keys put in a shuffled order with values (growth through many
 * rehashes), every key found with its last value, absent keys absent,
 * replacing a value keeps the count, NULL values, empty and long keys.
 */
#include "check.h"
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { N = 20000 };

static void key_of(int i, char *out, size_t n) {
    snprintf(out, n, "images/%05d/%x.jpg", i, (unsigned)i * 2654435761u);
}

int main(void) {
    bn_strset s;
    bn_strset_init(&s);
    CHECK(!bn_strset_has(&s, "x") && bn_strset_get(&s, "x") == NULL);
    int *order = malloc(N * sizeof *order);
    for (int i = 0; i < N; i++)
        order[i] = i;
    uint64_t state = 42; /* a fixed shuffle, so a failure can be rerun */
    for (int i = N - 1; i > 0; i--) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        int j = (int)((state >> 33) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    char key[64], val[32];
    int failed_puts = 0;
    for (int i = 0; i < N; i++) {
        key_of(order[i], key, sizeof key);
        snprintf(val, sizeof val, "%d", order[i]);
        failed_puts += bn_strset_put(&s, key, order[i] % 7 ? val : NULL) != 0;
    }
    CHECK_INT(failed_puts, 0);
    CHECK_INT((long long)s.n, N);
    int found = 0, right = 0;
    for (int i = 0; i < N; i++) {
        key_of(i, key, sizeof key);
        found += bn_strset_has(&s, key);
        const char *v = bn_strset_get(&s, key);
        snprintf(val, sizeof val, "%d", i);
        right += i % 7 ? v && strcmp(v, val) == 0 : v == NULL;
    }
    CHECK_INT(found, N);
    CHECK_INT(right, N);
    /* Absent: neighbours of present keys. */
    CHECK(!bn_strset_has(&s, "images/00001/") && !bn_strset_has(&s, ""));
    key_of(N, key, sizeof key);
    CHECK(!bn_strset_has(&s, key));
    /* Replace a value: same count, new value. */
    key_of(3, key, sizeof key);
    CHECK(bn_strset_put(&s, key, "three") == 0);
    CHECK_INT((long long)s.n, N);
    CHECK_STR(bn_strset_get(&s, key), "three");
    /* The empty key and a long one are keys like any other. */
    char *longkey = malloc(5001);
    memset(longkey, 'k', 5000);
    longkey[5000] = '\0';
    CHECK(bn_strset_put(&s, "", "empty") == 0 && bn_strset_put(&s, longkey, "long") == 0);
    CHECK_STR(bn_strset_get(&s, ""), "empty");
    CHECK_STR(bn_strset_get(&s, longkey), "long");
    longkey[4999] = 'j';
    CHECK(!bn_strset_has(&s, longkey));
    CHECK_INT((long long)s.n, N + 2);
    free(longkey);
    free(order);
    bn_strset_free(&s);
    return check_done();
}
