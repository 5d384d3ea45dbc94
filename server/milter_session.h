/* milter_session.h -- one milter connection as the native engine serves
 * it, without the socket: bytes from Postfix go in, the filter chain is
 * called for each command, and the replies (with the changes made at end
 * of message) come out in s->out for the engine to write.  Kept apart
 * from the event loop (milter_native.c) so that fuzz/fuzz_milter.c and the
 * unit tests can drive it with any bytes. */
#ifndef PL_MILTER_SESSION_H
#define PL_MILTER_SESSION_H

#include "milter_chain.h"
#include "milter_proto.h"

#define PL_MSESS_NMACRO 8

struct pl_msess {
    pl_mctx mc;
    struct pl_mbuf in, out;
    char *macros[PL_MSESS_NMACRO];     /* each stage's MACRO data, as sent */
    size_t macro_len[PL_MSESS_NMACRO];
    int mstage;                        /* the stage being served, for macro lookups */
    int at_eom;                        /* changes are allowed */
    int negotiated, renegotiate;      /* renegotiate: allowed after QUIT_NC */
    int eom_apart;                     /* stop before an end of message (below) */
    unsigned long actions;             /* negotiated */
};

void pl_msess_init(struct pl_msess *s);

/* Take bytes from Postfix.  0: go on (write s->out if not empty); 1: the
 * session is over (write s->out, then close); -1: protocol error or the
 * session was refused (close; s->out may still hold a reply worth
 * writing).  A message for the log is in why on -1. */
int pl_msess_input(struct pl_msess *s, const void *data, size_t len, char *why, size_t whylen);

/* With s->eom_apart set, pl_msess_input stops in front of an end of
 * message and returns 2, leaving it in s->in: the engine runs it where a
 * filter may wait (the store, a presence lookup) with pl_msess_eom(), then
 * calls pl_msess_input(s, NULL, 0, ...) for what follows it.  Returns as
 * pl_msess_input. */
int pl_msess_eom(struct pl_msess *s, char *why, size_t whylen);

/* End the session (the filters' close callbacks) and free it. */
void pl_msess_free(struct pl_msess *s);

#endif
