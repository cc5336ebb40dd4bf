/*
 * test_json: the --json writers: escapes, invalid UTF-8 replaced so the
 * output parses, numbers and null.
 */
#include "check.h"
#include "json.h"

static const char *render_string(const char *s) {
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    bn_json_string(f, s);
    fclose(f);
    return buf;
}

static const char *render_number(double v) {
    static char buf[64];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    bn_json_number(f, v);
    fclose(f);
    return buf;
}

int main(void) {
    CHECK_STR(render_string("train/cat/cat.1.jpg"), "\"train/cat/cat.1.jpg\"");
    CHECK_STR(render_string("a \"quoted\" \\ name"), "\"a \\\"quoted\\\" \\\\ name\"");
    CHECK_STR(render_string("new\nline\ttab"), "\"new\\u000aline\\u0009tab\"");
    CHECK_STR(render_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x88"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x88\""); /* valid UTF-8 kept */
    CHECK_STR(render_string("bad\xff\xfe"), "\"bad\\ufffd\\ufffd\"");
    CHECK_STR(render_string("cut \xe2\x82"), "\"cut \\ufffd\\ufffd\"");   /* truncated */
    CHECK_STR(render_string("over \xc0\xaf"), "\"over \\ufffd\\ufffd\""); /* overlong '/' */
    CHECK_STR(render_string("sur \xed\xa0\x80"), "\"sur \\ufffd\\ufffd\\ufffd\""); /* surrogate */
    CHECK_STR(render_string(NULL), "null");
    CHECK_STR(render_number(0.5), "0.5");
    CHECK_STR(render_number(1.0 / 3.0), "0.3333333333");
    CHECK_STR(render_number(NAN), "null");
    CHECK_STR(render_number(-INFINITY), "null");
    return check_done();
}
