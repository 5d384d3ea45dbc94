/* fuzz_pop3.c -- libFuzzer target: the pure parsers of lib/pop3_client.h,
 * as the client meets what a POP3 server sends.  Every input line goes
 * through the status, CAPA, LIST and UIDL parsers (with their invariants
 * checked); the whole input, as a stream of multi-line responses, goes
 * through the body decoder at once, byte by byte and in chunks whose sizes
 * come from the input: the three must agree, each feed's output must stay
 * within 2 * in + 2, and a feed consumes everything unless it found the end. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sum;

static void check_line(struct pl_pop3_caps *caps, const char *line, size_t len)
{
    char code[8], id[PL_POP3_ID_MAX + 1];
    const char *text = NULL, *why = NULL;
    unsigned long n;
    unsigned long long sz;
    int rc = pl_pop3_status_parse(line, len, code, sizeof(code), &text);

    if (rc < -1 || rc > 1 || strlen(code) >= sizeof(code) || text < line || text > line + len)
        abort();
    if (rc == -1 && code[0] != '\0')
        abort();
    pl_pop3_caps_line(caps, line, len);
    if (caps->expire < -2 || caps->login_delay < -1
        || strlen(caps->implementation) >= sizeof(caps->implementation))
        abort();
    for (const char *s = caps->implementation; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            abort();
    if (pl_pop3_list_parse(line, len, &n, &sz) == 0) {
        if (n == 0 || len < 3)
            abort();
        sum += (unsigned)sz;
    }
    if (pl_pop3_uidl_parse(line, len, &n, id, &why) == 0) {
        size_t k = strlen(id);
        if (n == 0 || k == 0 || k > PL_POP3_ID_MAX)
            abort();
        for (size_t i = 0; i < k; i++)
            if (id[i] < 0x21 || id[i] > 0x7e)
                abort();
    } else if (why == NULL) {
        abort();
    }
}

/* Decodes in[0..n) feeding `step(i)` bytes at a time; the output goes to
 * out (2 * n + 2 bytes).  Returns the bytes consumed; *outlen, *done. */
static size_t decode(const char *in, size_t n, const uint8_t *steps, size_t nsteps, char *out,
                     char *tmp, size_t *outlen, int *done)
{
    struct pl_pop3_ml m;
    size_t off = 0, o = 0, j = 0;

    pl_pop3_ml_init(&m);
    while (off < n && !m.done) {
        size_t k = nsteps == 0 ? n - off : (size_t)steps[j++ % nsteps] % 23 + 1, olen, used;
        if (k > n - off)
            k = n - off;
        used = pl_pop3_ml_feed(&m, in + off, k, tmp, &olen);
        if (used > k || olen > 2 * k + 2 || (!m.done && used != k))
            abort();
        memcpy(out + o, tmp, olen);
        o += olen;
        off += used;
    }
    if (o > 2 * off + 2)
        abort();
    *outlen = o;
    *done = m.done;
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct pl_pop3_caps caps;
    char *a, *b, *tmp;
    size_t off = 0;

    memset(&caps, 0, sizeof(caps));
    caps.expire = -1;
    caps.login_delay = -1;
    while (off < size) {                              /* line by line */
        const char *nl = memchr(buf + off, '\n', size - off);
        size_t end = nl ? (size_t)(nl - buf) : size, len = end - off;
        if (len > 0 && buf[off + len - 1] == '\r')
            len--;
        check_line(&caps, buf + off, len);
        off = end + 1;
    }

    a = malloc(2 * size + 2);
    b = malloc(2 * size + 2);
    tmp = malloc(2 * size + 2);
    if (a == NULL || b == NULL || tmp == NULL)
        abort();
    for (off = 0; off < size;) {                      /* response after response */
        size_t la, lb, ua, ub;
        int da, db;
        static const uint8_t one = 0;                 /* 0 % 23 + 1: byte by byte */
        ua = decode(buf + off, size - off, NULL, 0, a, tmp, &la, &da);
        ub = decode(buf + off, size - off, &one, 1, b, tmp, &lb, &db);
        if (ua != ub || la != lb || da != db || memcmp(a, b, la) != 0)
            abort();
        ub = decode(buf + off, size - off, data, size, b, tmp, &lb, &db);
        if (ua != ub || la != lb || da != db || memcmp(a, b, la) != 0)
            abort();
        sum += (unsigned)la;
        if (!da || ua == 0)
            break;
        off += ua;
    }
    free(a);
    free(b);
    free(tmp);
    return 0;
}
