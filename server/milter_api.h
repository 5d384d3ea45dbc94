/* milter_api.h -- what a postlink filter is, to the server layer: the
 * stages it wants, the ones at which it can only say "continue" (they are
 * negotiated "no reply", so Postfix does not wait for them), the macros it
 * reads, and its callbacks, which get a pl_mctx and change the message
 * through pl_mf_*() only.  The same filter runs on either milter engine
 * (milter_engine = native | libmilter), alone or with other filters in
 * one process on one milter connection (postlink-milter); see
 * milter_server.h.  Result codes are libmilter's SMFIS_* values. */
#ifndef PL_MILTER_API_H
#define PL_MILTER_API_H

#include <stddef.h>
#include <sys/socket.h>
#include <libmilter/mfapi.h>

typedef struct pl_mctx pl_mctx;

/* Stages, in protocol order. */
enum pl_mf_stage {
    PL_MF_CONNECT, PL_MF_HELO, PL_MF_MAIL, PL_MF_RCPT, PL_MF_DATA, PL_MF_HEADER,
    PL_MF_EOH, PL_MF_BODY, PL_MF_EOM, PL_MF_NSTAGES
};
#define PL_MF_BIT(s) (1u << (s))

struct pl_filter {
    const char *name;
    unsigned long actions;             /* SMFIF_* it may use at end of message */
    unsigned stages;                   /* PL_MF_BIT()s it wants called (EOM always) */
    unsigned replies;                  /* stages at which it may answer other than
                                        * continue; the rest are negotiated no-reply,
                                        * and a failure there dooms the transaction
                                        * (the connection, at connect or HELO): every
                                        * later stage Postfix waits for gets it */
    const char *macros[PL_MF_NSTAGES]; /* names it reads, per stage ("{auth_authen}") */
    sfsistat (*connect)(pl_mctx *, const char *host, const struct sockaddr *sa);
    sfsistat (*helo)(pl_mctx *, const char *name);
    sfsistat (*envfrom)(pl_mctx *, char **argv);
    sfsistat (*envrcpt)(pl_mctx *, char **argv);
    sfsistat (*data)(pl_mctx *);
    sfsistat (*header)(pl_mctx *, const char *name, const char *value);
    sfsistat (*eoh)(pl_mctx *);
    sfsistat (*body)(pl_mctx *, const unsigned char *chunk, size_t len);
    sfsistat (*eom)(pl_mctx *);
    void (*abort)(pl_mctx *);          /* the transaction ended without end of message */
    void (*close)(pl_mctx *);          /* the connection ended: free the private data */
};

/* This filter's private data for the connection. */
void *pl_mf_getpriv(pl_mctx *ctx);
void pl_mf_setpriv(pl_mctx *ctx, void *priv);

/* A macro Postfix sent ("i", "{auth_authen}"); NULL if it sent none. */
const char *pl_mf_getsymval(pl_mctx *ctx, const char *name);

/* The SMTP reply that goes with a REJECT or TEMPFAIL returned next. */
int pl_mf_setreply(pl_mctx *ctx, const char *rcode, const char *xcode, const char *text);

/* Changes, at end of message only.  0 or -1. */
int pl_mf_addheader(pl_mctx *ctx, const char *name, const char *value);
int pl_mf_chgheader(pl_mctx *ctx, const char *name, int index, const char *value);
int pl_mf_addrcpt(pl_mctx *ctx, const char *rcpt);
int pl_mf_delrcpt(pl_mctx *ctx, const char *rcpt);

#endif
