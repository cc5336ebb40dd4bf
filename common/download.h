/*
 * download.h: fetch a file over HTTP(S) with libcurl, verify its MD5, and
 * store it atomically (written to DEST.part.XXXXXX, fsync, rename): DEST is
 * either complete and verified or absent.
 */
#ifndef BN_DOWNLOAD_H
#define BN_DOWNLOAD_H

#include "error.h"
#include <stddef.h>

/* Called now and then with bytes received so far and the total (0 if the
 * server did not say). May be NULL. */
typedef void (*bn_download_progress)(void *ctx, size_t done, size_t total);

/* Download url to dest. md5_hex may be NULL to skip verification. Creates
 * dest's directory if needed. */
int bn_download(const char *url, const char *dest, const char *md5_hex,
                bn_download_progress progress, void *ctx, bn_error *err);

#endif
