/* fuzz_imap.c -- libFuzzer target: lib/imap_resp.h, as postlink-mirrord's
 * IMAP primary meets what a server sends.  The input is the server's byte
 * stream: it is framed whole, byte by byte and in chunks whose sizes come
 * from the input, and the three must give the same responses (texts,
 * bodies, cut flags) and the same error; each response's text goes through
 * the tagged, EXISTS, UIDVALIDITY and FETCH parsers with their invariants
 * checked (bounds, a quoted body inside the text, UIDs of 32 bits). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sum;

static void check_text(const char *t, size_t len)
{
    const char *rest = NULL;
    unsigned long n;
    struct pl_imap_fetch f;
    int rc;

    if (strlen(t) != len || len > PL_IMAP_TEXT_MAX)
        abort();
    rc = pl_imap_tagged(t, "pl1", &rest);
    if (rc < -1 || rc > 2 || (rc >= 0 && (rest < t || rest > t + len)))
        abort();
    if (pl_imap_untagged_num(t, "EXISTS", &n) == 0)
        sum += (unsigned)n;
    if (pl_imap_code_num(t, "UIDVALIDITY", &n) == 0)
        sum += (unsigned)n;
    rc = pl_imap_fetch_parse(t, &f);
    if (rc < -1 || rc > 1)
        abort();
    if (rc == 0) {
        if (f.uid > 0xffffffffUL || f.body < 0 || f.body > 3 || (!f.has_size && f.size))
            abort();
        if (f.body == 2) {
            char *out;
            if (f.q < t || f.q + f.qlen > t + len || (out = malloc(f.qlen + 1)) == NULL)
                abort();
            if (pl_imap_unquote(f.q, f.qlen, out) > f.qlen)
                abort();
            free(out);
        }
    }
}

/* Frames in[0..n) in steps; a digest of what came out, in out[0..*olen). */
static int frame(const uint8_t *in, size_t n, const uint8_t *steps, size_t nsteps,
                 size_t body_max, char *out, size_t *olen, int check)
{
    struct pl_imap_rd r;
    size_t off = 0, o = 0, j = 0;
    int rc = 0;

    pl_imap_rd_init(&r, body_max);
    while (off < n) {
        size_t k = nsteps == 0 ? n - off : (size_t)steps[j++ % nsteps] % 23 + 1, used = 0;
        if (k > n - off)
            k = n - off;
        rc = pl_imap_rd_feed(&r, (const char *)in + off, k, &used);
        if (used > k || (rc == 0 && used != k))
            abort();
        off += used;
        if (rc < 0)
            break;
        if (rc == 1) {
            if (r.body_len > body_max || (!r.has_body && r.body_len) || (r.body_cut && !r.has_body))
                abort();
            if (check)
                check_text(r.text, r.len);
            /* text, flags, body: what the three framings must agree on */
            memcpy(out + o, r.text, r.len);
            o += r.len;
            out[o++] = (char)('0' + r.cut + 2 * r.has_body + 4 * r.body_cut);
            if (r.body_len)
                memcpy(out + o, r.body, r.body_len);
            o += r.body_len;
            out[o++] = '\n';
        }
    }
    pl_imap_rd_free(&r);
    *olen = o;
    return rc < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t one = 0;                 /* 0 % 23 + 1: byte by byte */
    size_t body_max = size ? 16 + data[0] : 16, la, lb;
    /* each response adds at most its bytes + 2; a literal may be counted in
     * text and body: 2 * size + 2 per response bounds it */
    char *a = malloc(4 * size + 16), *b = malloc(4 * size + 16);
    int ra, rb;

    if (a == NULL || b == NULL)
        abort();
    ra = frame(data, size, NULL, 0, body_max, a, &la, 1);
    rb = frame(data, size, &one, 1, body_max, b, &lb, 0);
    if (ra != rb || la != lb || memcmp(a, b, la) != 0)
        abort();
    rb = frame(data, size, data, size, body_max, b, &lb, 0);
    if (ra != rb || la != lb || memcmp(a, b, la) != 0)
        abort();
    sum += (unsigned)la;
    free(a);
    free(b);
    return 0;
}
