/* route_decide.h -- which IP phone number, if any, a relayed recipient's
 * mail goes to, and by which rule: shared by the postlink-route filter and
 * "postlinkctl route test", so it lives in the data-model layer.  The
 * administrator's tables are held in memory (struct route_tables) and
 * reloaded when their generation changes. */
#ifndef PL_ROUTE_DECIDE_H
#define PL_ROUTE_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "kwscan.h"
#include "phone.h"
#include "store.h"

enum route_rule { ROUTE_PREFIX, ROUTE_MAP, ROUTE_KEYWORD, ROUTE_NRULES };

struct route_tables {
    uint64_t gen;
    int loaded;
    struct pl_phone_prefix *prefix;
    size_t nprefix;
    struct pl_kw *kw;               /* NULL when there are no keywords */
    char **kw_word, **kw_number;    /* as written, and the canonical number */
    size_t nkw;
};

struct route_opts {
    enum route_rule order[ROUTE_NRULES];
    size_t norder;
    const char *country_code;       /* "" for none */
};

/* The decoded text of a message: its header fields ("Name: value\n", RFC
 * 2047 words decoded) and the text of its text parts (transfer encoding
 * undone, converted to UTF-8). */
struct route_text {
    char *headers;
    size_t hlen;
    char *body;
    size_t blen;
    int body_cut;                   /* the scan limit cut the body */
};

struct route_hit {
    char number[PL_PHONE_MAX];
    char rule[32];                  /* e.g. "map:domain", "keyword:body" */
    char detail[300];               /* the table row or the text that matched */
};

/* The rules named in words (route_order's items: prefix, map, keyword, any
 * order, each at most once); 0 or -1 with err. */
int route_order_parse(const char *const *words, struct route_opts *o, char *err, size_t errlen);
const char *route_rule_name(enum route_rule r);
/* The order as text, the names joined by sep. */
void route_order_text(const struct route_opts *o, const char *sep, char *out, size_t len);

/* (Re)load the tables if their generation moved; PL_OK or the store's error. */
int route_tables_load(pl_txn *t, struct route_tables *rt);
void route_tables_free(struct route_tables *rt);
/* Nonzero if any rule could look at the message text. */
int route_tables_want_text(const struct route_tables *rt, int trusted);

/* Decide for rcpt: text may be NULL (address rules only); numbers in the
 * text count only when trusted.  1 with hit filled, 0 for no number, or
 * a negative PL_* store error. */
int route_decide(pl_txn *t, const struct route_tables *rt, const struct route_opts *o,
                 const char *rcpt, const struct route_text *text, int trusted,
                 struct route_hit *hit);

/* Decode a whole message (headers and body, CRLF or LF) into text with
 * GMime; at most max_body bytes of decoded body are kept.  0 or -1. */
int route_text_from_message(const char *msg, size_t len, size_t max_body, struct route_text *text);
void route_text_free(struct route_text *text);

#endif
