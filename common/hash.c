/*
 * hash.c: SHA-256 and MD5 through GLib's GChecksum (GLib comes with libvips,
 * so this adds no dependency): no hand-written compression functions to get
 * wrong or to keep up.
 *
 * Owns: the content hashes that identify images (sha256 in the store), the
 * weights file (sha256 recorded with every feature set) and the md5 check
 * of downloaded weights (Keras publishes md5 sums). Both hashes share one
 * shape: init, update with any number of byte runs, final to lowercase hex
 * (or discard, for a stream given up on). The *_file helpers read a file in
 * 64 KiB slices, so memory is bounded.
 */
#include "hash.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* g_checksum_update takes a gssize: feed larger runs in slices. */
static void checksum_update(void *g, const void *data, size_t len) {
    const guchar *p = data;
    while (len > 0) {
        size_t n = len < ((size_t)1 << 30) ? len : (size_t)1 << 30;
        g_checksum_update(g, p, (gssize)n);
        p += n;
        len -= n;
    }
}

/* The digest as lowercase hex into hex (size bytes, NUL included); frees g. */
static void checksum_final(void **g, char *hex, size_t size) {
    snprintf(hex, size, "%s", g_checksum_get_string(*g));
    g_checksum_free(*g);
    *g = NULL;
}

static void checksum_discard(void **g) {
    if (*g)
        g_checksum_free(*g);
    *g = NULL;
}

void bn_hash_sha256_init(bn_hash_sha256 *h) {
    h->g = g_checksum_new(G_CHECKSUM_SHA256);
}

void bn_hash_sha256_update(bn_hash_sha256 *h, const void *data, size_t len) {
    checksum_update(h->g, data, len);
}

void bn_hash_sha256_final(bn_hash_sha256 *h, char hex[65]) {
    checksum_final(&h->g, hex, 65);
}

void bn_hash_sha256_hex(const void *data, size_t len, char hex[65]) {
    bn_hash_sha256 h;
    bn_hash_sha256_init(&h);
    bn_hash_sha256_update(&h, data, len);
    bn_hash_sha256_final(&h, hex);
}

void bn_hash_md5_init(bn_hash_md5 *h) {
    h->g = g_checksum_new(G_CHECKSUM_MD5);
}

void bn_hash_md5_update(bn_hash_md5 *h, const void *data, size_t len) {
    checksum_update(h->g, data, len);
}

void bn_hash_md5_final(bn_hash_md5 *h, char hex[33]) {
    checksum_final(&h->g, hex, 33);
}

void bn_hash_md5_discard(bn_hash_md5 *h) {
    checksum_discard(&h->g);
}

void bn_hash_md5_hex(const void *data, size_t len, char hex[33]) {
    bn_hash_md5 h;
    bn_hash_md5_init(&h);
    bn_hash_md5_update(&h, data, len);
    bn_hash_md5_final(&h, hex);
}

/* ---- files ------------------------------------------------------------ */

/* Feed a whole file to GChecksum g in 64 KiB slices, then its digest into
 * hex (size bytes); g is freed either way. Returns 0 or -1 with errno set
 * (open or read error). */
static int hash_file(const char *path, void *g, char *hex, size_t size) {
    enum { SLICE = 1 << 16 };
    FILE *f = fopen(path, "rb");
    uint8_t *buf = f ? malloc(SLICE) : NULL;
    int failed = !f || !buf, saved = f ? ENOMEM : errno;
    size_t n;
    while (!failed && (n = fread(buf, 1, SLICE, f)) > 0)
        checksum_update(g, buf, n);
    if (!failed && ferror(f)) {
        failed = 1;
        saved = errno ? errno : EIO;
    }
    free(buf);
    if (f)
        fclose(f);
    if (failed) {
        checksum_discard(&g);
        errno = saved;
        return -1;
    }
    checksum_final(&g, hex, size);
    return 0;
}

int bn_hash_sha256_file(const char *path, char hex[65]) {
    return hash_file(path, g_checksum_new(G_CHECKSUM_SHA256), hex, 65);
}

int bn_hash_md5_file(const char *path, char hex[33]) {
    return hash_file(path, g_checksum_new(G_CHECKSUM_MD5), hex, 33);
}
