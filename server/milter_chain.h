/* milter_chain.h -- the filters of one milter process called in order for
 * each milter session, whichever engine speaks the protocol: what to
 * negotiate (stages nobody wants are left out, stages where every filter
 * can only continue get "no reply", macro lists are the union of what the
 * filters read), the verdict of each stage (the first reject, tempfail or
 * discard wins; a filter that accepts is left out for the rest of the
 * message or connection; a failure in a no-reply stage dooms the
 * transaction or connection: every later stage Postfix waits for gets
 * it, and no filter is called meanwhile), and the count of transactions in
 * progress that a stop waits for.  The engines (milter_native.c,
 * milter_libmilter.c) give each session a pl_mctx and the operations that
 * change the message. */
#ifndef PL_MILTER_CHAIN_H
#define PL_MILTER_CHAIN_H

#include "milter_api.h"

#define PL_CHAIN_MAX 4                 /* filters in one process */

/* How an engine carries out a filter's requests for its session. */
struct pl_mctx_ops {
    const char *(*getsymval)(void *eng, const char *name);
    int (*addheader)(void *eng, const char *name, const char *value);
    int (*chgheader)(void *eng, const char *name, int index, const char *value);
    int (*addrcpt)(void *eng, const char *rcpt);
    int (*delrcpt)(void *eng, const char *rcpt);
};

struct pl_mctx {
    const struct pl_mctx_ops *ops;
    void *eng;                         /* the engine's session */
    unsigned cur;                      /* the filter being called */
    void *priv[PL_CHAIN_MAX];
    unsigned nr;                       /* PL_MF_BIT()s negotiated no-reply */
    unsigned done_conn, done_msg;      /* filters that accepted the connection, message */
    unsigned skip_body;                /* filters that want no more of the body */
    int in_txn, connected, can_skip;
    int doomed;                        /* 1 transaction, 2 connection: failed where */
    sfsistat deferred;                 /* Postfix waits for no answer; answered so */
    int have_reply;                    /* with this SMTP reply: */
    char rcode[4], xcode[12], text[480];
    int d_have;                        /* the deferred failure's reply */
    char d_rcode[4], d_xcode[12], d_text[480];
};

/* The process's filters (at start-up, before any session). */
void pl_chain_init(const struct pl_filter *const *filters, unsigned n);
const char *pl_chain_names(void);      /* "postlink-tag, postlink-sync" */

/* Negotiation: from what Postfix offers, the actions and protocol flags
 * to answer (and c->nr).  Returns -1 when the session must be refused
 * (the process is stopping, or Postfix lacks an action a filter needs). */
int pl_chain_negotiate(pl_mctx *c, unsigned long offer_actions, unsigned long offer_proto,
                       unsigned long *actions, unsigned long *proto);

/* The union of the filters' macro names for the macro list smfim
 * (SMFIM_CONNECT .. SMFIM_LAST), space-separated, or NULL when none reads
 * any: what the engines ask Postfix for with SMFIF_SETSYMLIST. */
const char *pl_chain_symlist(int smfim);

/* A session's start and the events.  Each returns what to answer:
 * SMFIS_CONTINUE, _REJECT, _TEMPFAIL, _DISCARD, _ACCEPT, _SKIP, or
 * SMFIS_NOREPLY for a stage negotiated no-reply.  With REJECT and TEMPFAIL
 * c->have_reply says whether c->rcode/xcode/text hold the SMTP reply. */
void pl_chain_begin(pl_mctx *c, const struct pl_mctx_ops *ops, void *eng);
sfsistat pl_chain_connect(pl_mctx *c, const char *host, const struct sockaddr *sa);
sfsistat pl_chain_helo(pl_mctx *c, const char *name);
sfsistat pl_chain_envfrom(pl_mctx *c, char **argv);
sfsistat pl_chain_envrcpt(pl_mctx *c, char **argv);
sfsistat pl_chain_data(pl_mctx *c);
sfsistat pl_chain_header(pl_mctx *c, const char *name, const char *value);
sfsistat pl_chain_eoh(pl_mctx *c);
sfsistat pl_chain_body(pl_mctx *c, const unsigned char *chunk, size_t len);
sfsistat pl_chain_eom(pl_mctx *c);
void pl_chain_abort(pl_mctx *c);
void pl_chain_close(pl_mctx *c);

/* Stop: refuse new sessions and transactions from now on. */
void pl_chain_drain(void);
int pl_chain_draining(void);
/* Transactions in progress (MAIL .. end of message or abort). */
unsigned pl_chain_live(void);
/* Threads inside a filter's callback. */
unsigned pl_chain_busy(void);

#endif
