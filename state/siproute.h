/* siproute.h -- capability 3's data (routing relayed mail over SIP):
 *   rprefix  key canonical prefix ("050") -> "<created> <digits after>"
 *   rmap     key lower-case address, domain or "*.suffix" ->
 *            "<created> <canonical number>"
 *   rkeyword key keyword with ASCII letters lower-cased ->
 *            "<created> <canonical number> <keyword as written>"
 *   rdecide  key route token -> what postlink-route decided for a message:
 *            "<created> <queue id>\n" then per recipient
 *            "<address>\t<number>\t<rule>\t<detail>\n"
 *   rresult  key "<token>\n<address>" -> "<time> <outcome> <detail>": what
 *            postlink-sipd did with that recipient (fallback queue id, ...)
 * and meta "route_gen", bumped with every table change so that processes
 * holding the tables in memory reload them.  The administrator's tables
 * are changed only by postlinkctl; the milter only reads them. */
#ifndef PL_SIPROUTE_H
#define PL_SIPROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "phone.h"
#include "store.h"

#define PL_T_RPREFIX "rprefix"
#define PL_T_RMAP "rmap"
#define PL_T_RKEYWORD "rkeyword"
#define PL_T_RDECIDE "rdecide"
#define PL_T_RRESULT "rresult"

#define PL_RTOKEN_LEN 32                /* hex digits: PL_ROUTE_TOKEN_LEN */
#define PL_RMAP_KEY_MAX 254

/* ---- the administrator's tables ---------------------------------------- */

/* Checks for postlinkctl: NULL if usable, else why not.  A map key is an
 * address (local@domain), a domain, or "*." and a domain; it is
 * lower-cased into out.  A keyword is 1-256 bytes without control
 * characters. */
const char *pl_rmap_key_check(const char *key, char *out, size_t outlen);
const char *pl_rkeyword_check(const char *word);

int pl_rprefix_add(pl_txn *t, const struct pl_phone_prefix *p, int64_t now);
int pl_rmap_add(pl_txn *t, const char *key, const char *number, int64_t now);
int pl_rkeyword_add(pl_txn *t, const char *word, const char *number, int64_t now);
/* PL_NOTFOUND when there was no such row. */
int pl_rprefix_del(pl_txn *t, const char *digits);
int pl_rmap_del(pl_txn *t, const char *key);
int pl_rkeyword_del(pl_txn *t, const char *word);

struct pl_rrow {
    const char *key;            /* prefix digits, map key, or keyword as written */
    const char *number;         /* "" for a prefix */
    unsigned after;             /* prefix only */
    int64_t created;
};
typedef int (*pl_rrow_fn)(void *ctx, const struct pl_rrow *r);
/* table: PL_T_RPREFIX, PL_T_RMAP or PL_T_RKEYWORD. */
int pl_rtable_list(pl_txn *t, const char *table, pl_rrow_fn fn, void *ctx);
/* The generation of the tables (0 if never changed). */
int pl_route_gen(pl_txn *t, uint64_t *gen);

/* The map lookup: exact address, else its domain, else the most specific
 * "*.suffix" row.  PL_OK with the number and the row's key, or
 * PL_NOTFOUND. */
int pl_rmap_lookup(pl_txn *t, const char *addr, char *number, size_t nlen,
                   char *row, size_t rowlen, const char **kind);

/* ---- decisions and results --------------------------------------------- */

/* A fresh route token (PL_RTOKEN_LEN + 1 bytes); nonzero if tok looks like one. */
int pl_rtoken_new(char *out, size_t outlen);
int pl_rtoken_ok(const char *tok);

struct pl_rdecision {
    const char *addr, *number, *rule, *detail;
};
int pl_rdecide_put(pl_txn *t, const char *token, const char *qid,
                   const struct pl_rdecision *d, size_t n, int64_t now);
/* PL_OK and a malloc'd copy of the record (parse with pl_rdecide_next), or
 * PL_NOTFOUND. */
int pl_rdecide_get(pl_txn *t, const char *token, char **rec);
/* Walk a record from pl_rdecide_get: *pos starts at 0; fills d (pointing
 * into rec, which it modifies) and returns 1 per recipient, 0 at the end.
 * The first call also sets *qid. */
int pl_rdecide_next(char *rec, size_t *pos, const char **qid, struct pl_rdecision *d);

int pl_rresult_put(pl_txn *t, const char *token, const char *addr, const char *outcome,
                   const char *detail, int64_t now);
/* PL_OK with outcome and detail, or PL_NOTFOUND. */
int pl_rresult_get(pl_txn *t, const char *token, const char *addr, char *outcome, size_t olen,
                   char *detail, size_t dlen);
/* Forget decisions and results made before `before`. */
int pl_route_purge_decisions(pl_txn *t, int64_t before, unsigned *purged);

#endif
