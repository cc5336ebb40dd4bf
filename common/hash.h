/*
 * hash.h: SHA-256 (content hashes of images and weight files) and MD5 (the
 * checksum Keras publishes for its weight files), computed by GLib's
 * GChecksum. Streaming and one-shot forms; digests as lowercase hex strings.
 */
#ifndef BN_HASH_H
#define BN_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A stream being hashed (GLib's GChecksum, kept opaque: callers need not
 * include glib.h). Every init is ended by final or discard. */
typedef struct {
    void *g;
} bn_hash_sha256;

typedef struct {
    void *g;
} bn_hash_md5;

void bn_hash_sha256_init(bn_hash_sha256 *h);
void bn_hash_sha256_update(bn_hash_sha256 *h, const void *data, size_t len);
void bn_hash_sha256_final(bn_hash_sha256 *h, char hex[65]); /* 64 hex digits + NUL */
void bn_hash_sha256_hex(const void *data, size_t len, char hex[65]);

void bn_hash_md5_init(bn_hash_md5 *h);
void bn_hash_md5_update(bn_hash_md5 *h, const void *data, size_t len);
void bn_hash_md5_final(bn_hash_md5 *h, char hex[33]); /* 32 hex digits + NUL */
void bn_hash_md5_discard(bn_hash_md5 *h);             /* no digest wanted; after final: nothing */
void bn_hash_md5_hex(const void *data, size_t len, char hex[33]);

/* Hash a whole file; returns 0, or -1 with errno set. */
int bn_hash_sha256_file(const char *path, char hex[65]);
int bn_hash_md5_file(const char *path, char hex[33]);

#endif
