/* imap_resp.h -- reading what an IMAP server sends (RFC 3501 responses)
 * for postlink-mirrord's IMAP primary: a framer that cuts the byte stream
 * into whole responses, literals ({n} CRLF and n bytes) included, and pure
 * parsers for the few responses a read-only mirror needs (tagged status,
 * "* n EXISTS", "* OK [UIDVALIDITY n]", "* n FETCH (UID .. RFC822.SIZE ..
 * BODY[..] ..)").
 *
 * Why not libcurl's own IMAP commands: with libcurl 7.88.1 a custom
 * request's write callback gets only the lines that start with "*": the
 * bytes of a literal (a message body) never arrive, a body line that
 * starts with "* " arrives as if it were a server response, and a line
 * over 16 KiB is cut with the transfer still "OK".  libcurl still makes
 * the connection (TLS, STARTTLS, certificate checks, login); this code
 * reads the responses.  No I/O here: fuzz/fuzz_imap.c drives it. */
#ifndef PL_IMAP_RESP_H
#define PL_IMAP_RESP_H

#include <stddef.h>

#define PL_IMAP_TEXT_MAX 16384      /* a response's text kept (the rest is cut) */

/* One response at a time.  After pl_imap_rd_feed said 1, the fields below
 * describe the response until the next feed (which starts the next one). */
struct pl_imap_rd {
    char *text;                     /* its lines joined, NUL-terminated (a NUL byte in
                                     * a line becomes '?'); a literal stays as its "{n}" */
    size_t len;
    int cut;                        /* text was longer than PL_IMAP_TEXT_MAX */
    int has_body;                   /* a literal after "BODY[...]" came */
    char *body;                     /* its bytes (the first such literal) */
    size_t body_len;
    int body_cut;                   /* it was longer than body_max: body_len bytes kept */
    char err[128];                  /* why feed said -1 */
    /* internal */
    size_t body_max, tcap, bcap, llen;
    unsigned long long lit_left;
    int state, lit_body, complete;
    char tail[32];                  /* the end of the current line */
};

void pl_imap_rd_init(struct pl_imap_rd *r, size_t body_max);
void pl_imap_rd_free(struct pl_imap_rd *r);
/* Feeds in[0..n): *used bytes are taken.  1: a response is complete (the
 * rest of in belongs to the next); 0: all taken, more needed; -1: the
 * stream is malformed (r->err), nothing more can be read from it. */
int pl_imap_rd_feed(struct pl_imap_rd *r, const char *in, size_t n, size_t *used);

/* ---- pure parsers of a response's text ---------------------------------- */

enum { PL_IMAP_OK = 0, PL_IMAP_NO = 1, PL_IMAP_BAD = 2 };

/* "TAG OK|NO|BAD text": that status, *rest at the text after it; -1 when
 * text is not tagged with tag (or not a status). */
int pl_imap_tagged(const char *text, const char *tag, const char **rest);
/* "* n WORD" (EXISTS, EXPUNGE...): 0 with *n, else -1. */
int pl_imap_untagged_num(const char *text, const char *word, unsigned long *n);
/* "* OK [CODE n] ..." (UIDVALIDITY, UIDNEXT): 0 with *n, else -1. */
int pl_imap_code_num(const char *text, const char *code, unsigned long *n);

/* "* seq FETCH (items)": the items the mirror asks for. */
struct pl_imap_fetch {
    unsigned long seq, uid;         /* uid 0: not in the response */
    int has_size;
    unsigned long long size;        /* RFC822.SIZE */
    int body;                       /* 0 none, 1 a literal (the framer's body),
                                     * 2 a quoted string (q, qlen: still escaped), 3 NIL */
    const char *q;
    size_t qlen;
};
/* 0 parsed, 1 not a FETCH response, -1 a FETCH response that is malformed. */
int pl_imap_fetch_parse(const char *text, struct pl_imap_fetch *f);

/* The IMAP quoted string's content q[0..qlen) unescaped into out (qlen bytes
 * suffice); returns its length. */
size_t pl_imap_unquote(const char *q, size_t qlen, char *out);

#endif
