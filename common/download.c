/*
 * download.c: one file over HTTP(S) with libcurl, stored atomically.
 *
 * Owns the only network access of the project (`--download` of the weights).
 * The body streams into DEST.part.XXXXXX beside DEST (same directory, so the
 * final rename is atomic), through an MD5 as it arrives; then fsync, rename,
 * fsync of the directory. On any failure (connection, HTTP status >= 400,
 * short body, md5 mismatch, disk full) the partial file is removed and an
 * existing DEST is left untouched: DEST is complete and verified or absent.
 *
 * Redirects are followed (storage.googleapis.com and mirrors use them), only
 * to http/https. A transfer that delivers nothing for 60 s is abandoned, so
 * a dead server cannot hang a run forever.
 */
#include "download.h"
#include "hash.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* mkdir -p: create dir and its missing parents (mode 0777 & ~umask). */
static int mkdirs(const char *dir) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        buf[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

typedef struct {
    int fd;
    const char *tmp;
    bn_hash_md5 md5;
    size_t done;
    int write_errno; /* set when a write to tmp failed */
    bn_download_progress progress;
    void *ctx;
} transfer;

/* libcurl body callback: append to the temp file and the running md5.
 * Returning less than asked makes curl stop with CURLE_WRITE_ERROR. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    transfer *t = user;
    size_t len = size * nmemb;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(t->fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            t->write_errno = w < 0 ? errno : EIO;
            return 0;
        }
        off += (size_t)w;
    }
    bn_hash_md5_update(&t->md5, data, len);
    t->done += len;
    return len;
}

/* libcurl progress callback: forward (received, announced total). */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dlnow, (void)ultotal, (void)ulnow;
    transfer *t = user;
    if (t->progress)
        t->progress(t->ctx, t->done, dltotal > 0 ? (size_t)dltotal : 0);
    return 0;
}

static int valid_md5(const char *s) {
    if (strlen(s) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i]))
            return 0;
    return 1;
}

/* Run the transfer into t; returns 0 or an error code with err filled. */
static int fetch(const char *url, transfer *t, bn_error *err) {
    CURL *c = curl_easy_init();
    if (!c)
        return bn_fail(err, BN_ENET, "%s: cannot start libcurl", url);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bottleneck/0.1 (libcurl)");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

    CURLcode res = curl_easy_perform(c);
    int rc = BN_OK;
    if (res == CURLE_HTTP_RETURNED_ERROR) {
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        rc = bn_fail(err, BN_ENET, "%s: server answered HTTP %ld%s", url, status,
                     status == 404 ? " (not found)" : "");
    } else if (res == CURLE_WRITE_ERROR && t->write_errno) {
        rc = bn_fail(err, BN_EIO, "%s: %s", t->tmp, strerror(t->write_errno));
    } else if (res != CURLE_OK) {
        rc = bn_fail(err, BN_ENET, "%s: download failed: %s", url,
                     errbuf[0] ? errbuf : curl_easy_strerror(res));
    }
    curl_easy_cleanup(c);
    return rc;
}

/* Make the finished temp file durable and give it its name. */
static int commit_file(transfer *t, const char *dest, bn_error *err) {
    if (fchmod(t->fd, 0644) != 0 || fsync(t->fd) != 0)
        return bn_fail(err, BN_EIO, "%s: %s", t->tmp, strerror(errno));
    int fd = t->fd;
    t->fd = -1;
    if (close(fd) != 0)
        return bn_fail(err, BN_EIO, "%s: %s", t->tmp, strerror(errno));
    if (rename(t->tmp, dest) != 0)
        return bn_fail(err, BN_EIO, "%s: cannot rename into place: %s", dest, strerror(errno));
    /* The rename itself is durable once the directory is synced. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dest);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return BN_OK;
}

int bn_download(const char *url, const char *dest, const char *md5_hex,
                bn_download_progress progress, void *ctx, bn_error *err) {
    if (!url || !*url || !dest || !*dest)
        return bn_fail(err, BN_EINVAL, "download: url and destination are required");
    if (md5_hex && !valid_md5(md5_hex))
        return bn_fail(err, BN_EINVAL, "%s: expected md5 '%s' is not 32 hex digits", dest, md5_hex);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return bn_fail(err, BN_ENET, "%s: cannot initialise libcurl: %s", url,
                       curl_easy_strerror(curl_init_rc));

    char dir[4096], tmp[4200];
    if (strlen(dest) >= sizeof dir)
        return bn_fail(err, BN_EINVAL, "%s: path is too long", dest);
    snprintf(dir, sizeof dir, "%s", dest);
    const char *d = dirname(dir);
    if (mkdirs(d) != 0)
        return bn_fail(err, BN_EIO, "%s: cannot create directory: %s", d, strerror(errno));
    snprintf(tmp, sizeof tmp, "%s.part.XXXXXX", dest);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return bn_fail(err, BN_EIO, "%s: %s", tmp, strerror(errno));

    transfer t = {.fd = fd, .tmp = tmp, .progress = progress, .ctx = ctx};
    bn_hash_md5_init(&t.md5);
    int rc = fetch(url, &t, err);
    if (rc == BN_OK && md5_hex) {
        char got[33];
        bn_hash_md5_final(&t.md5, got);
        if (strcasecmp(got, md5_hex) != 0)
            rc =
                bn_fail(err, BN_ECHECKSUM,
                        "%s: md5 of the %zu bytes received is %s, expected %s (download discarded)",
                        url, t.done, got, md5_hex);
    }
    if (rc == BN_OK) {
        if (progress)
            progress(ctx, t.done, t.done);
        rc = commit_file(&t, dest, err);
    }
    bn_hash_md5_discard(&t.md5); /* when no md5 was asked for, or the fetch failed */
    if (t.fd >= 0)
        close(t.fd);
    if (rc != BN_OK)
        unlink(tmp); /* harmless if the rename already happened: then rc was 0 */
    return rc;
}
