/* milter_libmilter.c -- the libmilter engine (milter_libmilter.h): one
 * smfiDesc whose callbacks hand each event to the filter chain, so the
 * same filters run here as on the native engine.
 *
 * libmilter's smfi_main() starts a thread of its own that sigwait()s for
 * SIGHUP, SIGTERM and SIGINT and stops the milter on any of them.  With
 * the server's signal thread waiting for the same signals, which of the
 * two gets one would be unspecified, and a SIGHUP could stop the milter.
 * So this file defines sigwait() for the milter programs: libmilter's
 * call resolves to it (the executable's definition comes first in the
 * dynamic linker's lookup) and parks that thread for good.  postlink
 * itself uses sigwaitinfo(), never sigwait(). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "milter_chain.h"
#include "milter_libmilter.h"
#include "privs.h"
#include "strutil.h"

int sigwait(const sigset_t *set, int *sig);
int sigwait(const sigset_t *set, int *sig)
{
    (void)set;
    (void)sig;
    for (;;)
        sleep(3600);           /* libmilter's signal thread: see the top of the file */
}

static const char *lm_getsymval(void *eng, const char *name)
{
    return smfi_getsymval(eng, (char *)name);
}
static int lm_addheader(void *eng, const char *n, const char *v)
{
    return smfi_addheader(eng, (char *)n, (char *)v) == MI_SUCCESS ? 0 : -1;
}
static int lm_chgheader(void *eng, const char *n, int i, const char *v)
{
    return smfi_chgheader(eng, (char *)n, i, (char *)v) == MI_SUCCESS ? 0 : -1;
}
static int lm_addrcpt(void *eng, const char *r)
{
    return smfi_addrcpt(eng, (char *)r) == MI_SUCCESS ? 0 : -1;
}
static int lm_delrcpt(void *eng, const char *r)
{
    return smfi_delrcpt(eng, (char *)r) == MI_SUCCESS ? 0 : -1;
}

static const struct pl_mctx_ops lm_ops = {
    lm_getsymval, lm_addheader, lm_chgheader, lm_addrcpt, lm_delrcpt,
};

/* What the chain answered, as libmilter wants it. */
static sfsistat out(SMFICTX *ctx, pl_mctx *c, sfsistat r)
{
    if ((r == SMFIS_REJECT || r == SMFIS_TEMPFAIL) && c->have_reply &&
        c->rcode[0] == (r == SMFIS_REJECT ? '5' : '4'))
        (void)smfi_setreply(ctx, c->rcode, c->xcode, c->text);
    return r;
}

#define CHAIN(ctx) ((pl_mctx *)smfi_getpriv(ctx))

static sfsistat lm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                             unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                             unsigned long *pf2, unsigned long *pf3)
{
    pl_mctx *c = pl_xcalloc(1, sizeof(*c));
    unsigned long a, p;

    (void)f2;
    (void)f3;
    pl_chain_begin(c, &lm_ops, ctx);
    if (pl_chain_negotiate(c, f0, f1, &a, &p) != 0) {
        free(c);
        return SMFIS_REJECT;   /* Postfix applies milter_default_action */
    }
    smfi_setpriv(ctx, c);
    *pf0 = a;
    *pf1 = p;
    *pf2 = *pf3 = 0;
    if (a & SMFIF_SETSYMLIST)
        for (int smfim = SMFIM_FIRST; smfim <= SMFIM_LAST; smfim++) {
            const char *m = pl_chain_symlist(smfim);
            if (m)
                (void)smfi_setsymlist(ctx, smfim, (char *)m);
        }
    return SMFIS_CONTINUE;
}

static sfsistat lm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_connect(c, host, (struct sockaddr *)sa)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_helo(SMFICTX *ctx, char *name)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_helo(c, name)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_envfrom(SMFICTX *ctx, char **argv)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_envfrom(c, argv)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_envrcpt(SMFICTX *ctx, char **argv)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_envrcpt(c, argv)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_data(SMFICTX *ctx)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_data(c)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_header(SMFICTX *ctx, char *name, char *value)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_header(c, name, value)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_eoh(SMFICTX *ctx)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_eoh(c)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_body(SMFICTX *ctx, unsigned char *b, size_t n)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_body(c, b, n)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_eom(SMFICTX *ctx)
{
    pl_mctx *c = CHAIN(ctx);
    return c ? out(ctx, c, pl_chain_eom(c)) : SMFIS_TEMPFAIL;
}
static sfsistat lm_abort(SMFICTX *ctx)
{
    pl_mctx *c = CHAIN(ctx);
    if (c)
        pl_chain_abort(c);
    return SMFIS_CONTINUE;
}
static sfsistat lm_close(SMFICTX *ctx)
{
    pl_mctx *c = CHAIN(ctx);
    if (c) {
        pl_chain_close(c);
        smfi_setpriv(ctx, NULL);
        free(c);
    }
    return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
    .xxfi_version = SMFI_VERSION,
    .xxfi_negotiate = lm_negotiate,
    .xxfi_connect = lm_connect,
    .xxfi_helo = lm_helo,
    .xxfi_envfrom = lm_envfrom,
    .xxfi_envrcpt = lm_envrcpt,
    .xxfi_data = lm_data,
    .xxfi_header = lm_header,
    .xxfi_eoh = lm_eoh,
    .xxfi_body = lm_body,
    .xxfi_eom = lm_eom,
    .xxfi_abort = lm_abort,
    .xxfi_close = lm_close,
};

int pl_libmilter_open(const char *name, const char *socket, const char *user, unsigned timeout_s)
{
    char err[512];

    desc.xxfi_name = (char *)name;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT;
    umask(0117);               /* the socket is made 0660 (privs.h: no chmod by path) */
    if (smfi_setconn((char *)socket) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
        msg_error("cannot set up the milter on %s", socket);
        return -1;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        msg_error("cannot listen on %s: %s", socket, strerror(errno));
        return -1;
    }
    if (strncmp(socket, "unix:", 5) == 0 &&
        pl_socket_for_postfix(socket + 5, user, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        return -1;
    }
    smfi_settimeout((int)timeout_s);
    return 0;
}

int pl_libmilter_run(void)
{
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}

void pl_libmilter_end(void)
{
    (void)smfi_stop();
}
