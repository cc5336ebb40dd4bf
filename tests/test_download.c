/*
 * test_download.c: bn_download and bn_weights_download against a small
 * HTTP/1.1 server on 127.0.0.1 run by this program in a thread.
 *
 * The server (one connection at a time, "Connection: close") serves:
 *   /small            a 300,000-byte file this test writes, with Content-Length
 *   /weights          ../shared/models/vgg16_random_notop.h5, with Content-Length
 *   /redirect         302 to /small
 *   /missing          404;  /broken: 500
 *   /truncated        Content-Length of /small, half the body, then close
 *   /short-no-length  half of /small without Content-Length (only md5 can tell)
 *   /hangup           closes without answering
 * Every case checks the result code, that the message is one line naming the
 * URL and the problem, that no DEST.part.* file is left, and that DEST is
 * either complete or absent (or, if it existed, untouched). alarm() bounds
 * the whole program; nothing leaves the loopback interface.
 */
#include "check.h"
#include "download.h"
#include "hash.h"
#include "support.h"
#include "weights.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* md5sum of ../shared/models/vgg16_random_notop.h5 (as in test_hash.c). */
#define SHARED_WEIGHTS_MD5 "cf3b0da033d61c1f9d5a6d60b40c3e4f"

enum { SMALL_SIZE = 300000 };
static unsigned char small_data[SMALL_SIZE];
static char small_md5[33];
static const char *tmpdir; /* support_mkdtemp */
static char small_file[4200];
static const char *weights_file;

/* ---- the server ---------------------------------------------------------- */

static int listen_fd = -1, port;
static volatile int stop_server;
static pthread_mutex_t hits_lock = PTHREAD_MUTEX_INITIALIZER;
static int weights_hits;

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void send_head(int fd, const char *status, long length, const char *extra) {
    char h[512];
    int n = snprintf(h, sizeof h, "HTTP/1.1 %s\r\nConnection: close\r\n%s", status, extra);
    if (length >= 0)
        n += snprintf(h + n, sizeof h - (size_t)n, "Content-Length: %ld\r\n", length);
    n += snprintf(h + n, sizeof h - (size_t)n, "\r\n");
    send_all(fd, h, (size_t)n);
}

/* Body = the first `limit` bytes of a file (all if limit < 0). */
static void send_file(int fd, const char *path, long limit) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char buf[1 << 16];
    size_t n;
    long left = limit < 0 ? -1 : limit;
    while (left != 0 && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (left > 0 && (long)n > left)
            n = (size_t)left;
        if (send_all(fd, buf, n) != 0)
            break;
        if (left > 0)
            left -= (long)n;
    }
    fclose(f);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void serve_one(int fd) {
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char path[1024] = "";
    if (sscanf(req, "GET %1023s HTTP/1.1", path) != 1) {
        send_head(fd, "400 Bad Request", 0, "");
        return;
    }
    if (!strcmp(path, "/small")) {
        send_head(fd, "200 OK", SMALL_SIZE, "Content-Type: application/octet-stream\r\n");
        send_file(fd, small_file, -1);
    } else if (!strcmp(path, "/weights")) {
        pthread_mutex_lock(&hits_lock);
        weights_hits++;
        pthread_mutex_unlock(&hits_lock);
        send_head(fd, "200 OK", file_size(weights_file), "");
        send_file(fd, weights_file, -1);
    } else if (!strcmp(path, "/redirect")) {
        char loc[128];
        snprintf(loc, sizeof loc, "Location: http://127.0.0.1:%d/small\r\n", port);
        send_head(fd, "302 Found", 0, loc);
    } else if (!strcmp(path, "/truncated")) {
        send_head(fd, "200 OK", SMALL_SIZE, "");
        send_file(fd, small_file, SMALL_SIZE / 2);
    } else if (!strcmp(path, "/short-no-length")) {
        send_head(fd, "200 OK", -1, "");
        send_file(fd, small_file, SMALL_SIZE / 2);
    } else if (!strcmp(path, "/broken")) {
        send_head(fd, "500 Internal Server Error", 5, "");
        send_all(fd, "oops\n", 5);
    } else if (!strcmp(path, "/hangup")) {
        /* say nothing */
    } else {
        send_head(fd, "404 Not Found", 10, "");
        send_all(fd, "not found\n", 10);
    }
}

static void *server_main(void *arg) {
    (void)arg;
    while (!stop_server) {
        struct pollfd p = {listen_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve_one(fd);
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

/* Bind 127.0.0.1 on a port the kernel picks; returns the port. */
static int bind_loopback(int *fd_out) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bind 127.0.0.1");
        exit(1);
    }
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static const char *url(const char *path) {
    static char buf[8][256];
    static int slot;
    char *u = buf[slot++ & 7];
    snprintf(u, 256, "http://127.0.0.1:%d%s", port, path);
    return u;
}

/* ---- helpers ------------------------------------------------------------ */

/* Number of leftover "*.part.*" files in dir. */
static int part_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".part.") != NULL;
    closedir(d);
    return n;
}

/* Whether path holds exactly these bytes. */
static int file_equals(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char *buf = malloc(n + 1);
    size_t got = fread(buf, 1, n + 1, f);
    fclose(f);
    int same = got == n && memcmp(buf, data, n) == 0;
    free(buf);
    return same;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

typedef struct {
    int calls, went_back;
    size_t last_done, last_total;
} progress_log;

static void on_progress(void *ctx, size_t done, size_t total) {
    progress_log *p = ctx;
    if (done < p->last_done)
        p->went_back = 1;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
}

/* A download that must fail with `code`, a one-line message starting with
 * the URL and containing `needle`, and leave no file behind. */
static void check_fails(const char *u, const char *dest, const char *md5, int code,
                        const char *needle) {
    bn_error err = {0};
    int rc = bn_download(u, dest, md5, NULL, NULL, &err);
    printf("expected failure: %s\n", err.msg);
    CHECK_MSG(rc == code, "%s: rc %d (want %d): %s", u, rc, code, err.msg);
    CHECK_MSG(strncmp(err.msg, u, strlen(u)) == 0 && strstr(err.msg, needle) != NULL,
              "message '%s' lacks '%s'", err.msg, needle);
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK_MSG(access(dest, F_OK) != 0, "%s exists after a failed download", dest);
    CHECK_INT(part_files(tmpdir), 0);
}

/* ---- cases -------------------------------------------------------------- */

static void test_success(void) {
    /* Missing parent directories are created. */
    const char *dest = support_tmp_path("a/b/c/small.bin");
    progress_log pl = {0};
    bn_error err = {0};
    int rc = bn_download(url("/small"), dest, small_md5, on_progress, &pl, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(file_equals(dest, small_data, SMALL_SIZE));
    CHECK(pl.calls >= 1);
    CHECK(!pl.went_back);
    CHECK_INT(pl.last_done, SMALL_SIZE);
    CHECK_INT(pl.last_total, SMALL_SIZE);
    CHECK_INT(part_files(support_tmp_path("a/b/c")), 0);
    struct stat st;
    CHECK(stat(dest, &st) == 0 && (st.st_mode & 0777) == 0644);

    /* Upper-case hex is the same md5; NULL skips the check. */
    char upper[33];
    for (int i = 0; i < 33; i++)
        upper[i] =
            (char)(small_md5[i] >= 'a' && small_md5[i] <= 'f' ? small_md5[i] - 32 : small_md5[i]);
    const char *d2 = support_tmp_path("upper.bin"), *d3 = support_tmp_path("nomd5.bin");
    CHECK_INT(bn_download(url("/small"), d2, upper, NULL, NULL, &err), 0);
    CHECK_INT(bn_download(url("/small"), d3, NULL, NULL, NULL, &err), 0);
    CHECK(file_equals(d2, small_data, SMALL_SIZE));
    CHECK(file_equals(d3, small_data, SMALL_SIZE));

    /* A 302 is followed. */
    const char *d4 = support_tmp_path("redirected.bin");
    rc = bn_download(url("/redirect"), d4, small_md5, NULL, NULL, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK(file_equals(d4, small_data, SMALL_SIZE));

    /* Success replaces an existing file as a whole. */
    write_file(d4, "old", 3);
    CHECK_INT(bn_download(url("/small"), d4, small_md5, NULL, NULL, &err), 0);
    CHECK(file_equals(d4, small_data, SMALL_SIZE));
    unlink(dest);
    unlink(d2);
    unlink(d3);
    unlink(d4);
    support_remove_tree(support_tmp_path("a"));
}

static void test_failures(void) {
    const char *dest = support_tmp_path("fail.bin");
    check_fails(url("/small"), dest, "0123456789abcdef0123456789abcdef", BN_ECHECKSUM,
                "expected 0123456789abcdef0123456789abcdef (download discarded)");
    check_fails(url("/missing"), dest, small_md5, BN_ENET, "HTTP 404");
    check_fails(url("/missing"), dest, NULL, BN_ENET, "HTTP 404");
    check_fails(url("/broken"), dest, small_md5, BN_ENET, "HTTP 500");
    check_fails(url("/truncated"), dest, small_md5, BN_ENET, "download failed");
    check_fails(url("/truncated"), dest, NULL, BN_ENET, "download failed");
    check_fails(url("/hangup"), dest, small_md5, BN_ENET, "download failed");
    /* The transport cannot tell this body is short; the md5 can. */
    check_fails(url("/short-no-length"), dest, small_md5, BN_ECHECKSUM, "md5 of the 150000 bytes");

    /* Nobody listening. */
    int fd, dead_port = bind_loopback(&fd);
    close(fd);
    char dead[128];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d/small", dead_port);
    check_fails(dead, dest, small_md5, BN_ENET, "download failed");

    /* Only http(s). */
    char file_url[4300];
    snprintf(file_url, sizeof file_url, "file://%s", small_file);
    check_fails(file_url, dest, NULL, BN_ENET, "download failed");

    bn_error err = {0};
    CHECK_INT(bn_download(url("/small"), dest, "not-an-md5", NULL, NULL, &err), BN_EINVAL);
    CHECK(access(dest, F_OK) != 0);
    /* The destination's directory cannot be created: its parent is a file. */
    CHECK_INT(
        bn_download(url("/small"), support_tmp_path("small.src/x/y.bin"), NULL, NULL, NULL, &err),
        BN_EIO);
    CHECK(strstr(err.msg, "small.src/x: cannot create directory") != NULL);
}

/* A failed download leaves an existing DEST exactly as it was. */
static void test_no_clobber(void) {
    const char *dest = support_tmp_path("precious.bin");
    write_file(dest, "precious\n", 9);
    bn_error err = {0};
    CHECK_INT(bn_download(url("/missing"), dest, NULL, NULL, NULL, &err), BN_ENET);
    CHECK(file_equals(dest, "precious\n", 9));
    CHECK_INT(bn_download(url("/truncated"), dest, small_md5, NULL, NULL, &err), BN_ENET);
    CHECK(file_equals(dest, "precious\n", 9));
    CHECK_INT(
        bn_download(url("/small"), dest, "0123456789abcdef0123456789abcdef", NULL, NULL, &err),
        BN_ECHECKSUM);
    CHECK(file_equals(dest, "precious\n", 9));
    CHECK_INT(bn_download(url("/hangup"), dest, NULL, NULL, NULL, &err), BN_ENET);
    CHECK(file_equals(dest, "precious\n", 9));
    CHECK_INT(part_files(tmpdir), 0);
    unlink(dest);
}

/* The weights path end to end: fetch the shared file from the loopback
 * "mirror" into the cache, then load it. */
static void test_weights_download(void) {
    char cache[4200], path[4200], want[4300];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    setenv("XDG_CACHE_HOME", cache, 1);
    setenv("BOTTLENECK_WEIGHTS_URL", url("/weights"), 1);
    setenv("BOTTLENECK_WEIGHTS_MD5", SHARED_WEIGHTS_MD5, 1);
    snprintf(want, sizeof want, "%s/bottleneck/%s", cache, BN_VGG16_WEIGHTS_FILE);

    progress_log pl = {0};
    bn_error err = {0};
    int rc = bn_weights_download(path, sizeof path, NULL, on_progress, &pl, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    CHECK_STR(path, want);
    CHECK_INT(weights_hits, 1);
    CHECK_INT(pl.last_done, 58892792);
    CHECK(!pl.went_back);

    bn_vgg16_weights w;
    rc = bn_weights_load(&w, path, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK_STR(w.sha256, "c974c2ab26fa3cd90860dd16a70601764a5d55517ad54988e107a676085f8ef1");
        bn_weights_free(&w);
    }
    /* Now bn_weights_locate finds it in the cache. */
    char found[4200];
    unsetenv("BOTTLENECK_WEIGHTS");
    CHECK_INT(bn_weights_locate(found, sizeof found, NULL, &err), 0);
    CHECK_STR(found, want);

    /* A verified cached file is not fetched again. */
    CHECK_INT(bn_weights_download(path, sizeof path, NULL, NULL, NULL, &err), 0);
    CHECK_INT(weights_hits, 1);

    /* Without the override the official md5 applies: the shared (random)
     * weights do not have it, so nothing may land in a fresh cache. */
    snprintf(cache, sizeof cache, "%s/cache2", tmpdir);
    setenv("XDG_CACHE_HOME", cache, 1);
    unsetenv("BOTTLENECK_WEIGHTS_MD5");
    rc = bn_weights_download(path, sizeof path, NULL, NULL, NULL, &err);
    CHECK_INT(rc, BN_ECHECKSUM);
    CHECK_MSG(strstr(err.msg, "expected " BN_VGG16_WEIGHTS_MD5) != NULL, "%s", err.msg);
    CHECK_INT(weights_hits, 2);
    char cached2[4300];
    snprintf(cached2, sizeof cached2, "%s/bottleneck/%s", cache, BN_VGG16_WEIGHTS_FILE);
    CHECK(access(cached2, F_OK) != 0);
    snprintf(cached2, sizeof cached2, "%s/bottleneck", cache);
    CHECK_INT(part_files(cached2), 0);

    /* An explicit URL wins over the variable. */
    setenv("BOTTLENECK_WEIGHTS_MD5", SHARED_WEIGHTS_MD5, 1);
    rc = bn_weights_download(path, sizeof path, url("/missing"), NULL, NULL, &err);
    CHECK_INT(rc, BN_ENET);
    CHECK(strstr(err.msg, "HTTP 404") != NULL);
    unsetenv("BOTTLENECK_WEIGHTS_URL");
    unsetenv("BOTTLENECK_WEIGHTS_MD5");
}

int main(void) {
    alarm(55); /* a hung transfer fails the test instead of stalling the suite */
    signal(SIGPIPE, SIG_IGN);
    weights_file = shared_path("models/vgg16_random_notop.h5");
    tmpdir = support_mkdtemp("bn-test-download");
    if (!tmpdir)
        return 1;
    unsigned x = 2024;
    for (int i = 0; i < SMALL_SIZE; i++) {
        x = x * 1664525u + 1013904223u;
        small_data[i] = (unsigned char)(x >> 24);
    }
    bn_hash_md5_hex(small_data, SMALL_SIZE, small_md5);
    snprintf(small_file, sizeof small_file, "%s/small.src", tmpdir);
    write_file(small_file, small_data, SMALL_SIZE);

    port = bind_loopback(&listen_fd);
    CHECK(listen(listen_fd, 16) == 0);
    pthread_t th;
    pthread_create(&th, NULL, server_main, NULL);

    test_success();
    test_failures();
    test_no_clobber();
    test_weights_download();

    stop_server = 1;
    pthread_join(th, NULL);
    close(listen_fd);
    support_remove_tree(tmpdir);
    return check_done();
}
