/* tag_filter.c -- the postlink-tag milter's callbacks: collect the header
 * fields capability 4 looks at, hash the body when a tag is to be made or
 * checked (only then: other mail skips the body stage after its first
 * chunk), and at the end of the message remove any
 * X-Messenger-Presence / X-Messenger-Chat (only postlink may write them),
 * then tag the mail of a linked sender (tag_outgoing.c) or check the tag
 * of any other mail (tag_incoming.c), and annotate it for local
 * recipients when the sender's presence may be shown (tag_annotate.c). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>

#include "address.h"
#include "header.h"
#include "log.h"
#include "tag_milter.h"

static void trim_copy(char *out, size_t len, const char *v)
{
    size_t n;
    v += strspn(v, " \t\r\n");
    snprintf(out, len, "%s", v);
    n = strlen(out);
    while (n > 0 && strchr(" \t\r\n", out[n - 1]))
        out[--n] = '\0';
}

int tag_strip(pl_mctx *ctx, const char *name, unsigned count)
{
    for (unsigned i = count; i >= 1; i--)
        if (pl_mf_chgheader(ctx, name, (int)i, NULL) != 0)
            return -1;
    return 0;
}

int tag_has_local(const struct tag_msg *m)
{
    for (size_t i = 0; i < m->rcpt.n; i++)
        if (pl_cfg_list_has(tm.cfg->enabled_domains_list, pl_addr_domain(m->rcpt.v[i])))
            return 1;
    return 0;
}

int tag_rcpts_in(const struct tag_msg *m, const struct pl_mailid *rec)
{
    for (size_t i = 0; i < m->rcpt.n; i++)
        if (!pl_mailid_has_rcpt(rec, m->rcpt.v[i]))
            return 0;
    return 1;
}

static int is_visible(const struct tag_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->visible.n; i++)
        if (strcmp(m->visible.v[i], addr) == 0)
            return 1;
    return 0;
}

void tag_rcpt_list(const struct tag_msg *m, char *out, size_t len)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < m->rcpt.n; i++) {
        const char *a = m->rcpt.v[i];
        int n;
        if (!pl_mailid_rcpt_ok(a))
            continue;
        n = snprintf(out + o, len - o, "%s%s%s", o ? " " : "", is_visible(m, a) ? "" : "~", a);
        if (n < 0 || (size_t)n >= len - o) {
            out[o] = '\0';                     /* the rest does not fit: left out */
            break;
        }
        o += (size_t)n;
    }
}

void tag_input(const struct tag_msg *m, const char *account, const char *mailid,
               struct pl_tagin *in)
{
    in->account = account;
    in->mailid = mailid;
    in->msgid = m->msgid;
    in->from = m->from;
    in->hdrs = m->bound.v;
    in->nhdrs = m->bound.n;
    in->bh = m->bh;
}

static void msg_free(struct tag_msg *m)
{
    if (m) {
        pl_strvec_free(&m->rcpt);
        pl_strvec_free(&m->visible);
        pl_strvec_free(&m->bound);
        pl_bodyhash_free(m->body);
        free(m);
    }
}

static sfsistat on_envfrom(pl_mctx *ctx, char **argv)
{
    struct tag_msg *m = pl_mf_getpriv(ctx);
    const char *auth = pl_mf_getsymval(ctx, "{auth_authen}");
    (void)argv;
    msg_free(m);
    m = pl_xcalloc(1, sizeof(*m));
    if (auth && *auth)
        pl_addr_canon(auth, m->auth, sizeof(m->auth));
    pl_mf_setpriv(ctx, m);
    return SMFIS_CONTINUE;
}

static sfsistat on_envrcpt(pl_mctx *ctx, char **argv)
{
    struct tag_msg *m = pl_mf_getpriv(ctx);
    char addr[TAG_ADDRMAX];
    if (m == NULL)
        return SMFIS_TEMPFAIL;
    if (pl_addr_from_smtp(argv[0] ? argv[0] : "", addr, sizeof(addr)) != 0) {
        /* no postlink user has one, so it changes nothing here: left out
         * (Postfix does not wait for this stage; postlink-sync refuses it) */
        msg_info("postlink-tag: recipient of %zu characters ignored (more than %d)",
                 strlen(argv[0] ? argv[0] : ""), PL_ADDR_MAX);
        return SMFIS_CONTINUE;
    }
    pl_strvec_add(&m->rcpt, addr);
    return SMFIS_CONTINUE;
}

static sfsistat on_header(pl_mctx *ctx, const char *name, const char *value)
{
    struct tag_msg *m = pl_mf_getpriv(ctx);
    char buf[TAG_ADDRMAX];

    if (m == NULL)
        return SMFIS_TEMPFAIL;
    if (pl_tag_bound(name) && m->n_bound++ < TAG_BOUND_MAX) {   /* (the rest: not kept) */
        char *c = pl_tag_hdr_canon(name, value);
        pl_strvec_add(&m->bound, c);
        free(c);
    }
    if (strcasecmp(name, "From") == 0) {
        if (m->n_from++ == 0 && pl_header_addr(value, buf, sizeof(buf)) == 0)
            pl_addr_canon(buf, m->from, sizeof(m->from));
        else
            m->from[0] = '\0';                 /* several From fields: nobody */
    } else if (strcasecmp(name, "Message-ID") == 0) {
        if (m->n_msgid++ > 0 || pl_msgid_parse(value, m->msgid, sizeof(m->msgid), NULL) != 0)
            m->msgid[0] = '\0';
    } else if (strcasecmp(name, "Subject") == 0) {
        if (m->subject[0] == '\0')
            trim_copy(m->subject, sizeof(m->subject), value);
    } else if (strcasecmp(name, "Date") == 0) {
        if (m->date[0] == '\0')
            trim_copy(m->date, sizeof(m->date), value);
    } else if (strcasecmp(name, "To") == 0 || strcasecmp(name, "Cc") == 0) {
        struct pl_strvec v = {0};
        pl_header_addr_list(value, &v);
        for (size_t i = 0; i < v.n && m->visible.n < 1000; i++) {
            pl_addr_canon(v.v[i], buf, sizeof(buf));
            pl_strvec_add(&m->visible, buf);
        }
        pl_strvec_free(&v);
    } else if (strcasecmp(name, "Jabber-ID") == 0) {
        trim_copy(buf, sizeof(buf), value);
        if (m->n_jabber++ == 0 && pl_jid_check(buf) == NULL)
            pl_jid_canon(buf, m->jabber_id, sizeof(m->jabber_id));
        else
            m->jabber_id[0] = '\0';
    } else if (strcasecmp(name, "X-Mail-Id") == 0) {
        m->n_mailid++;
        trim_copy(m->mailid, sizeof(m->mailid), value);
    } else if (strcasecmp(name, "X-Postlink-Tag") == 0) {
        m->n_tag++;
        trim_copy(m->tag, sizeof(m->tag), value);
    } else if (strcasecmp(name, "X-Messenger-Presence") == 0) {
        m->n_presence++;
    } else if (strcasecmp(name, "X-Messenger-Chat") == 0) {
        m->n_chat++;
    }
    return SMFIS_CONTINUE;
}

/* The body counts only for a tag to make (a sender of this site who
 * authenticated) or to check (the mail has one). */
static sfsistat on_body(pl_mctx *ctx, const unsigned char *chunk, size_t len)
{
    struct tag_msg *m = pl_mf_getpriv(ctx);

    if (m == NULL)
        return SMFIS_TEMPFAIL;
    if (m->body_wanted == 0)
        m->body_wanted = m->n_tag > 0 || (m->auth[0] && pl_cfg_list_has(tm.cfg->enabled_domains_list,
                                                           pl_addr_domain(m->auth))) ? 1 : -1;
    if (m->body_wanted < 0)
        return SMFIS_SKIP;             /* (with the body "no reply": no more chunks to it) */
    if (m->body == NULL)
        m->body = pl_bodyhash_new();
    if (pl_bodyhash_update(m->body, chunk, len) != 0) {
        msg_qid(LOG_WARNING, pl_mf_getsymval(ctx, "i"), "postlink-tag: cannot hash the body: tempfail");
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}

static sfsistat tempfail(pl_mctx *ctx, const char *qid, const char *why)
{
    msg_qid(LOG_WARNING, qid, "postlink-tag: %s: tempfail", why);
    pl_mf_setreply(ctx, "451", "4.3.0", "postlink state store busy, try again later");
    return SMFIS_TEMPFAIL;
}

static sfsistat on_eom(pl_mctx *ctx)
{
    struct tag_msg *m = pl_mf_getpriv(ctx);
    const char *qid = pl_mf_getsymval(ctx, "i");
    char mailid[64] = "", jid[TAG_ADDRMAX] = "";
    int tagged = 0, show;

    if (m == NULL)
        return SMFIS_TEMPFAIL;
    if (m->body_wanted >= 0) {                   /* (0: the body is empty) */
        if (m->body == NULL)
            m->body = pl_bodyhash_new();
        if (pl_bodyhash_final(m->body, m->bh) != 0)
            return tempfail(ctx, qid, "cannot hash the body");
    }
    if (m->n_presence + m->n_chat > 0) {
        msg_qid(LOG_INFO, qid, "postlink-tag: removed %u X-Messenger-Presence/Chat field(s) "
                "written by the sender", m->n_presence + m->n_chat);
        if (tag_strip(ctx, "X-Messenger-Presence", m->n_presence) != 0 ||
            tag_strip(ctx, "X-Messenger-Chat", m->n_chat) != 0)
            return tempfail(ctx, qid, "cannot remove a header field");
    }
    if ((show = tag_outgoing(ctx, m, qid, mailid, jid, &tagged)) < 0)
        return tempfail(ctx, qid, "cannot tag the message");
    if (!tagged && (show = tag_incoming(ctx, m, qid, mailid, jid)) < 0)
        return tempfail(ctx, qid, "cannot check the message's tag");
    if (show == 1 && tag_has_local(m) && tag_annotate(ctx, qid, jid, mailid) != 0)
        return tempfail(ctx, qid, "cannot add the presence header fields");
    return SMFIS_CONTINUE;
}

static void on_abort(pl_mctx *ctx)
{
    msg_free(pl_mf_getpriv(ctx));
    pl_mf_setpriv(ctx, NULL);
}

/* Postfix waits for an answer only at the end of the message; MAIL, RCPT,
 * the header fields and the body are "no reply" (tags bind the body's
 * hash, so the body is sent), the connection, HELO, DATA and end of
 * header are not sent at all. */
const struct pl_filter tag_filter = {
    .name = "postlink-tag",
    .actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS,
    .stages = PL_MF_BIT(PL_MF_MAIL) | PL_MF_BIT(PL_MF_RCPT) | PL_MF_BIT(PL_MF_HEADER) |
              PL_MF_BIT(PL_MF_BODY),
    .replies = 0,
    .macros = {[PL_MF_MAIL] = "{auth_authen}", [PL_MF_EOM] = "i"},
    .envfrom = on_envfrom,
    .envrcpt = on_envrcpt,
    .header = on_header,
    .body = on_body,
    .eom = on_eom,
    .abort = on_abort,
    .close = on_abort,
};
