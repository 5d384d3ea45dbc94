/* push_req.h -- the device API's request parser (capability 5,
 * postlink-pushd): from the method, path, query arguments and the
 * Authorization header that the HTTP library split out, the one request a
 * device may make, or the HTTP status and reason it gets instead.  Pure:
 * no store, no I/O (a fuzz target feeds it).  The wire format is in
 * postlink-pushd(8):
 *   GET    /v1/fetch?get=<id|first>&ack=<id>&disp=delete|move&room=<bytes>&slots=<n>
 *   GET    /v1/wait?timeout=<seconds>
 *   POST   /v1/subscription     (body: a Web Push subscription, JSON)
 *   DELETE /v1/subscription
 *   POST   /v1/sync             (ask for a mirror sync)
 * every one with "Authorization: Bearer <device token>". */
#ifndef PL_PUSH_REQ_H
#define PL_PUSH_REQ_H

#include <stddef.h>

#define PL_PREQ_ID_LEN 32          /* hex digits of a message id */
#define PL_PREQ_TOKEN_LEN 81       /* "<16 hex>.<64 hex>" */
#define PL_PREQ_MAX_ARGS 16

enum pl_preq_kind { PL_PREQ_FETCH, PL_PREQ_WAIT, PL_PREQ_SUBSCRIBE, PL_PREQ_UNSUBSCRIBE,
                    PL_PREQ_SYNC };

struct pl_preq_arg { const char *name, *value; };   /* value NULL: "name" without "=" */

struct pl_preq {
    enum pl_preq_kind kind;
    char token[PL_PREQ_TOKEN_LEN + 1];
    int has_get;                   /* fetch: a get= was given */
    char get[PL_PREQ_ID_LEN + 1];  /* "" = first */
    int has_ack;
    char ack[PL_PREQ_ID_LEN + 1];
    int move;                      /* disp=move (default delete) */
    long long room;                /* room= bytes, -1 when absent */
    long long slots;               /* slots= messages, -1 when absent */
    long long timeout;             /* wait: timeout= seconds, -1 when absent */
};

/* Returns 0 and fills r, or the HTTP status to answer (400 malformed, 401
 * no or malformed token, 404 no such resource, 405 wrong method) with a
 * one-line reason in *why.  Unknown arguments are refused (a typo must not
 * be silently ignored); a fetch needs get= or ack= or both. */
int pl_preq_parse(const char *method, const char *path, const struct pl_preq_arg *args,
                  size_t nargs, const char *authorization, struct pl_preq *r, const char **why);

#endif
