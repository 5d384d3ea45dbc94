/* tagcanon.c -- relaxed canonical header fields and body hash for
 * X-Postlink-Tag v=3 (tagcanon.h). */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "strutil.h"
#include "tagcanon.h"

static int is_wsp(int c)
{
    return c == ' ' || c == '\t';
}

char *pl_tag_hdr_canon(const char *name, const char *value)
{
    struct pl_strbuf b = {0};
    int space = 0, text = 0;

    size_t nl = strlen(name);

    while (nl > 0 && is_wsp((unsigned char)name[nl - 1]))
        nl--;                                /* "Subject :" (obsolete syntax) */
    for (size_t i = 0; i < nl; i++)
        pl_strbuf_addc(&b, (char)tolower((unsigned char)name[i]));
    pl_strbuf_addc(&b, ':');
    for (const char *p = value; *p; p++) {
        if (*p == '\n' || (*p == '\r' && p[1] == '\n'))
            continue;                        /* unfold (a lone CR is text) */
        if (is_wsp((unsigned char)*p)) {
            space = 1;
            continue;
        }
        if (space && text)
            pl_strbuf_addc(&b, ' ');
        space = 0;
        text = 1;
        pl_strbuf_addc(&b, *p);
    }
    return pl_strbuf_take(&b);
}

struct pl_bodyhash {
    EVP_MD_CTX *md;
    int content;                /* the current line has text */
    int space;                  /* white space seen since the line's last text */
    int cr;                     /* the last byte was a CR: a line end if LF follows */
    size_t empty;               /* empty lines not yet written (maybe the end) */
    char buf[4096];             /* canonical bytes not yet hashed */
    size_t n;
    int bad;                    /* an OpenSSL call failed */
};

static void put(struct pl_bodyhash *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->n == sizeof(b->buf)) {
            if (EVP_DigestUpdate(b->md, b->buf, b->n) != 1)
                b->bad = 1;
            b->n = 0;
        }
        b->buf[b->n++] = s[i];
    }
}

/* A byte of text (anything but SP, HTAB and a line end). */
static void text(struct pl_bodyhash *b, char ch)
{
    if (!b->content)
        for (; b->empty > 0; b->empty--)
            put(b, "\r\n", 2);          /* not the end after all */
    if (b->space)
        put(b, " ", 1);
    put(b, &ch, 1);
    b->content = 1;
    b->space = 0;
}

struct pl_bodyhash *pl_bodyhash_new(void)
{
    struct pl_bodyhash *b = pl_xcalloc(1, sizeof(*b));
    if ((b->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(b->md, EVP_sha256(), NULL) != 1)
        b->bad = 1;
    return b;
}

int pl_bodyhash_update(struct pl_bodyhash *b, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        int c = p[i];
        if (b->cr) {                     /* (the CR may end the previous chunk) */
            b->cr = 0;
            if (c != '\n')
                text(b, '\r');           /* a lone CR */
        }
        if (c == '\r') {
            b->cr = 1;
        } else if (c == '\n') {
            if (b->content)
                put(b, "\r\n", 2);
            else
                b->empty++;
            b->content = b->space = 0;
        } else if (is_wsp(c)) {
            b->space = 1;
        } else {
            text(b, (char)c);
        }
    }
    return b->bad ? -1 : 0;
}

int pl_bodyhash_final(struct pl_bodyhash *b, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;

    if (b->cr)
        text(b, '\r');                   /* a CR at the very end: lone */
    if (b->content)
        put(b, "\r\n", 2);               /* the last line had no line end */
    b->content = b->space = b->cr = 0;
    b->empty = 0;
    if (b->bad || EVP_DigestUpdate(b->md, b->buf, b->n) != 1 ||
        EVP_DigestFinal_ex(b->md, md, &len) != 1 || len != 32)
        return -1;
    b->n = 0;
    b->bad = 1;                          /* finished: no more input */
    return EVP_EncodeBlock((unsigned char *)out, md, 32) == PL_BODYHASH_B64 ? 0 : -1;
}

void pl_bodyhash_free(struct pl_bodyhash *b)
{
    if (b) {
        EVP_MD_CTX_free(b->md);
        free(b);
    }
}
