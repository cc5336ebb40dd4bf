/*
 * test_progress.c: what long work prints (progress.h), read back.
 *
 * - A log (a plain file): one line at the first update, then none for 10 s;
 *   the last line at finish, "ETA 00:00" when all was done, "none (stopped)"
 *   when the work ended short of its total (an error, a signal).
 * - Nothing at all when quiet, or when nothing was done and nothing shown
 *   (work refused before its first item ends with its error line alone),
 *   or for 0 done of an unknown total (a download not yet answered).
 * - A terminal (a pseudo-terminal, read from its master side): the bar is
 *   redrawn in place (\r, erase to end of line) and the last line ends with
 *   a newline.
 */
#include "check.h"
#include "progress.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Everything written to f since it was opened. */
static char *contents(FILE *f) {
    static char buf[4096];
    fflush(f);
    long n = ftell(f);
    rewind(f);
    size_t got = fread(buf, 1, n < (long)sizeof buf - 1 ? (size_t)n : sizeof buf - 1, f);
    buf[got] = '\0';
    return buf;
}

static int starts_with(const char *s, const char *prefix) {
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void log_file(void) {
    FILE *f = tmpfile();
    bn_progress p;
    bn_progress_start(&p, f, "extract", "img", 10, 0);
    bn_progress_update(&p, 3);
    bn_progress_update(&p, 6); /* within 10 s of the first: not drawn */
    bn_progress_update(&p, 10);
    bn_progress_finish(&p);
    const char *s = contents(f);
    CHECK_MSG(lines(s) == 2, "a log gets the first and the last line: '%s'", s);
    CHECK_MSG(starts_with(s, "extract: 3/10 img, "), "first line: '%s'", s);
    CHECK_MSG(strstr(s, "\nextract: 10/10 img, ") != NULL, "last line: '%s'", s);
    CHECK_MSG(strstr(s, "ETA 00:00\n") != NULL, "done: ETA 00:00: '%s'", s);
    CHECK_MSG(strstr(s, "stopped") == NULL, "done, not stopped: '%s'", s);
    fclose(f);

    f = tmpfile();
    bn_progress_start(&p, f, "extract", "img", 10, 0);
    bn_progress_update(&p, 4);
    bn_progress_finish(&p); /* a log already has this line: nothing new... */
    CHECK_MSG(lines(contents(f)) == 1, "no second line for the same count: '%s'", contents(f));
    fclose(f);

    f = tmpfile();
    bn_progress_start(&p, f, "verify", "vec", 10, 0);
    bn_progress_update(&p, 4);
    bn_progress_update(&p, 7);
    bn_progress_finish(&p); /* ... a count it has not shown, with no ETA */
    s = contents(f);
    CHECK_MSG(strstr(s, "\nverify: 7/10 vec, ") != NULL && strstr(s, "ETA none (stopped)\n"),
              "stopped short of the total: '%s'", s);
    fclose(f);
}

static void silent(void) {
    const char *s;
    FILE *f = tmpfile();
    bn_progress p;
    bn_progress_start(&p, f, "extract", "img", 10, 1);
    bn_progress_update(&p, 5);
    bn_progress_update(&p, 10);
    bn_progress_finish(&p);
    CHECK_MSG(contents(f)[0] == '\0', "quiet: '%s'", contents(f));
    fclose(f);

    f = tmpfile();
    bn_progress_start(&p, f, "verify", "vec", 0, 0);
    bn_progress_finish(&p);
    CHECK_MSG(contents(f)[0] == '\0', "nothing done, nothing shown: '%s'", contents(f));
    fclose(f);

    /* A download that fails before the server answers: its callback says 0
     * of an unknown total, which is no news. */
    f = tmpfile();
    bn_progress_start(&p, f, "download", "MiB", 0, 0);
    bn_progress_update(&p, 0);
    bn_progress_finish(&p);
    CHECK_MSG(contents(f)[0] == '\0', "0 of an unknown total: nothing: '%s'", contents(f));
    fclose(f);

    /* ... and one that gets going draws from its first megabyte. */
    f = tmpfile();
    bn_progress_start(&p, f, "download", "MiB", 0, 0);
    bn_progress_update(&p, 0);
    p.total = 56;
    bn_progress_update(&p, 1);
    bn_progress_update(&p, 56);
    bn_progress_finish(&p);
    s = contents(f);
    CHECK_MSG(starts_with(s, "download: 1/56 MiB, ") && strstr(s, "\ndownload: 56/56 MiB, "),
              "a download that gets going: '%s'", s);
    fclose(f);
}

static void terminal(void) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) {
        printf("terminal: no pseudo-terminal here, not checked\n");
        return;
    }
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    FILE *f = slave >= 0 ? fdopen(slave, "w") : NULL;
    CHECK(f != NULL);
    if (!f)
        return;
    bn_progress p;
    bn_progress_start(&p, f, "extract", "img", 4, 0);
    bn_progress_update(&p, 2);
    bn_progress_update(&p, 4);
    bn_progress_finish(&p);
    fclose(f);
    char buf[2048];
    ssize_t n, got = 0;
    /* the slave is closed: read what it wrote until EIO */
    while (got < (ssize_t)sizeof buf - 1 && (n = read(master, buf + got, sizeof buf - 1 - got)) > 0)
        got += n;
    buf[got] = '\0';
    close(master);
    CHECK_MSG(starts_with(buf, "\rextract [###############...............] 2/4 img  "),
              "half way: the bar half full: '%s'", buf);
    CHECK_MSG(strstr(buf, "\033[K") != NULL, "each draw erases the rest of the line: '%s'", buf);
    const char *last = NULL; /* the last draw (the tty ends the line with \r\n) */
    for (const char *q = buf; (q = strstr(q, "\rextract [")) != NULL; q++)
        last = q;
    CHECK_MSG(starts_with(last, "\rextract [##############################] 4/4 img  "),
              "the last draw: a full bar: '%s'", buf);
    /* the terminal turns \n into \r\n on output */
    CHECK_MSG(got >= 2 && buf[got - 1] == '\n', "ends its line: '%s'", buf);
}

int main(void) {
    log_file();
    silent();
    terminal();
    return check_done();
}
