/* sync.c -- the state rules of capability 1 (sync.h) over the store.
 *
 * Records (all text, so that db_dump output is readable):
 *   msg      "<user>\n<msgid>" -> "<seen> <flags> <ver> <arrived>" then, per
 *            flag (read replied saved deleted), " <date> <cver> <seq>": the
 *            stamp of the change that last set it
 *   uver     "<user>" -> "<version> <seq>"
 *   chg      "<user>\n<%020 version>" -> "<msgid>" (one per message: its last change)
 *   ctlseen  "<user>\n<ctl msgid>\n<target>" -> "<time>"
 *   pending  "<user>\n<target>\n<%020 seq>" ->
 *            "<P|E> <expires> <date> <cver> <seq> <word> <sender>\n<ctl msgid>" */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "device.h"
#include "log.h"
#include "outbox.h"
#include "strutil.h"
#include "sync.h"

#define FUTURE_SLACK 900      /* a Date further ahead than this is not trusted */
#define KEYMAX 1024

struct stamp { int64_t date, cver, seq; };

struct msgrec {
    int seen;
    unsigned flags;
    int64_t ver, arrived;
    struct stamp st[4];
};

struct uver { int64_t version, seq; };

static const char *const flag_imap[4] = {"\\Seen", "\\Answered", "$Saved", "\\Deleted"};

static int flag_index(unsigned bit)
{
    for (int i = 0; i < 4; i++)
        if (bit == 1u << i)
            return i;
    return -1;
}

static int stamp_cmp(const struct stamp *a, const struct stamp *b)
{
    if (a->date != b->date)
        return a->date < b->date ? -1 : 1;
    if (a->cver != b->cver)
        return a->cver < b->cver ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

/* Keys never exceed KEYMAX: users (<= PL_ADDR_MAX) and Message-IDs (<= 250) are
 * bounded by their parsers; the clamp only keeps a bug from over-reading. */
static size_t clamp(int n)
{
    return n < 0 ? 0 : (size_t)n >= KEYMAX ? KEYMAX - 1 : (size_t)n;
}

static size_t key2(char *k, const char *a, const char *b)
{
    return clamp(snprintf(k, KEYMAX, "%s\n%s", a, b));
}

/* ---- records ------------------------------------------------------------ */

static int msg_get(pl_txn *t, const char *user, const char *msgid, struct msgrec *m)
{
    char k[KEYMAX];
    void *v = NULL;
    int rc = pl_store_get(t, PL_T_MSG, k, key2(k, user, msgid), &v, NULL, 1);
    memset(m, 0, sizeof(*m));
    if (rc != PL_OK)
        return rc;
    int n = sscanf(v, "%d %u %" SCNd64 " %" SCNd64
                   " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64
                   " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64,
                   &m->seen, &m->flags, &m->ver, &m->arrived,
                   &m->st[0].date, &m->st[0].cver, &m->st[0].seq,
                   &m->st[1].date, &m->st[1].cver, &m->st[1].seq,
                   &m->st[2].date, &m->st[2].cver, &m->st[2].seq,
                   &m->st[3].date, &m->st[3].cver, &m->st[3].seq);
    free(v);
    if (n != 16) {
        msg_warn("store: damaged msg record for %s %s: reset", user, msgid);
        memset(m, 0, sizeof(*m));
        m->seen = 1;
    }
    return PL_OK;
}

static int msg_put(pl_txn *t, const char *user, const char *msgid, const struct msgrec *m)
{
    char k[KEYMAX], v[512];
    size_t kl = key2(k, user, msgid);
    int n = snprintf(v, sizeof(v), "%d %u %" PRId64 " %" PRId64, m->seen, m->flags, m->ver,
                     m->arrived);
    for (int i = 0; i < 4; i++)
        n += snprintf(v + n, sizeof(v) - (size_t)n, " %" PRId64 " %" PRId64 " %" PRId64,
                      m->st[i].date, m->st[i].cver, m->st[i].seq);
    return pl_store_put(t, PL_T_MSG, k, kl, v, (size_t)n);
}

static int uver_get(pl_txn *t, const char *user, struct uver *u)
{
    void *v = NULL;
    int rc = pl_store_get(t, PL_T_UVER, user, strlen(user), &v, NULL, 1);
    memset(u, 0, sizeof(*u));
    if (rc == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    if (sscanf(v, "%" SCNd64 " %" SCNd64, &u->version, &u->seq) != 2)
        memset(u, 0, sizeof(*u));
    free(v);
    return PL_OK;
}

static int uver_put(pl_txn *t, const char *user, const struct uver *u)
{
    char v[64];
    int n = snprintf(v, sizeof(v), "%" PRId64 " %" PRId64, u->version, u->seq);
    return pl_store_put(t, PL_T_UVER, user, strlen(user), v, (size_t)n);
}

static size_t chg_key(char *k, const char *user, int64_t ver)
{
    return clamp(snprintf(k, KEYMAX, "%s\n%020" PRId64, user, ver));
}

/* ---- applying one word to one message ----------------------------------- */

enum outcome { APPLIED, UNCHANGED, STALE };

struct applier {
    pl_txn *t;
    const struct pl_sync_opts *o;
    const char *user, *tag;
    struct uver *u;
    struct pl_sync_result *r;
};

static void note_outbox(struct pl_sync_result *r, uint64_t id)
{
    if (r->outbox_first == 0)
        r->outbox_first = id;
    r->outbox_last = id;
}

static int apply_word(struct applier *a, const char *msgid, struct msgrec *m,
                      enum pl_ctl_word w, const struct stamp *st, enum outcome *out)
{
    int set, fi, rc;
    unsigned bit, nflags;
    char k[KEYMAX];

    bit = (unsigned)pl_ctl_word_flag(w, &set);
    if ((fi = flag_index(bit)) < 0)
        return PL_ERR;
    if (stamp_cmp(st, &m->st[fi]) < 0) {
        *out = STALE;
        return PL_OK;
    }
    m->st[fi] = *st;
    nflags = set ? (m->flags | bit) : (m->flags & ~bit);
    if (nflags == m->flags) {
        *out = UNCHANGED;
        return msg_put(a->t, a->user, msgid, m);
    }
    *out = APPLIED;
    if (m->ver > 0 && (rc = pl_store_del(a->t, PL_T_CHG, k, chg_key(k, a->user, m->ver))) < 0)
        return rc;
    m->flags = nflags;
    m->ver = ++a->u->version;
    if ((rc = pl_store_put(a->t, PL_T_CHG, k, chg_key(k, a->user, m->ver), msgid,
                           strlen(msgid))) != PL_OK ||
        (rc = msg_put(a->t, a->user, msgid, m)) != PL_OK)
        return rc;
    if (a->o->imap) {
        uint64_t id;
        if ((rc = pl_outbox_add_imap(a->t, a->tag, a->user, msgid, set, flag_imap[fi], &id)) != PL_OK)
            return rc;
        note_outbox(a->r, id);
    }
    return PL_OK;
}

/* ---- copies ------------------------------------------------------------- */

struct devlist { struct pl_strvec v; const char *sender; const char *const *ex; size_t nex; };

static int collect_device(void *ctx, const struct pl_device *d)
{
    struct devlist *l = ctx;
    if (strcmp(d->address, l->sender) == 0)
        return 0;
    for (size_t i = 0; i < l->nex; i++)
        if (strcmp(d->address, l->ex[i]) == 0)
            return 0;
    pl_strvec_add(&l->v, d->address);
    return 0;
}

static void add_date(struct pl_strbuf *b, int64_t when)
{
    char buf[64];
    time_t tt = (time_t)when;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    pl_strbuf_addf(b, "Date: %s\r\n", buf);
}

static void add_msgid(struct pl_strbuf *b, const struct pl_sync_opts *o, const char *ctl_msgid,
                      const struct uver *u, const char *what)
{
    if (ctl_msgid && *ctl_msgid)
        pl_strbuf_addf(b, "Message-ID: %s\r\n", ctl_msgid);
    else
        pl_strbuf_addf(b, "Message-ID: <postlink.%s.%" PRId64 ".%" PRId64 "@%s>\r\n", what,
                       o->now, u->seq, o->hostname);
}

/* Queue a copy of a control (word on targets) from sender for each of the
 * user's other devices, one outbox entry each.  Returns PL_OK also when there is nobody to send to. */
static int fan_out(struct applier *a, const char *sender, enum pl_ctl_word w,
                   const char *const *targets, size_t n, const char *ctl_msgid,
                   int64_t date, const char *const *ex, size_t nex)
{
    struct devlist l = {{0}, sender, ex, nex};
    struct pl_strbuf b = {0};
    uint64_t id;
    int rc;

    if (n == 0)
        return PL_OK;
    if ((rc = pl_device_list_txn(a->t, a->user, collect_device, &l)) != PL_OK || l.v.n == 0) {
        pl_strvec_free(&l.v);
        return rc;
    }
    pl_strbuf_addf(&b, "From: <%s>\r\nTo: <%s>\r\n", sender, a->user);
    pl_strbuf_addf(&b, "Subject: postlink: %s\r\n", pl_ctl_word_name(w));
    add_date(&b, date);
    add_msgid(&b, a->o, ctl_msgid, a->u, "copy");
    pl_strbuf_addf(&b, "X-Control: %s\r\n", pl_ctl_word_name(w));
    for (size_t i = 0; i < n; i++)
        pl_strbuf_addf(&b, "X-Control-Target: %s\r\n", targets[i]);
    pl_strbuf_addf(&b, "X-Control-Version: %" PRId64 "\r\n", a->u->version);
    pl_strbuf_addf(&b, "X-Postlink-Forwarded: by %s; user=%s; from=%s; version=%" PRId64 "\r\n",
                   a->o->hostname, a->user, sender, a->u->version);
    pl_strbuf_adds(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    pl_strbuf_addf(&b, "%s marked %zu message(s) %s.\r\n", sender, n, pl_ctl_word_name(w));
    /* one entry per device: each copy is delivered, retried or given up
     * on its own, so one device that refuses it costs the others nothing */
    for (size_t i = 0; i < l.v.n && rc == PL_OK; i++) {
        const char *one[1] = {l.v.v[i]};
        if ((rc = pl_outbox_add_smtp(a->t, a->tag, a->user, one, 1, b.s, b.len, &id)) == PL_OK) {
            note_outbox(a->r, id);
            a->r->copies++;
        }
    }
    pl_strbuf_free(&b);
    pl_strvec_free(&l.v);
    return rc;
}

/* ---- resync ------------------------------------------------------------- */

struct resync { pl_txn *t; const char *user; int64_t since; struct pl_strbuf *body; unsigned n; int rc; };

static int resync_line(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct resync *rs = ctx;
    const char *nl = memchr(k, '\n', kl);
    char msgid[PL_MSGID_MAX + 1], states[64], num[24];
    size_t nlen;
    struct msgrec m;
    int64_t ver;

    if (nl == NULL || vl > PL_MSGID_MAX)
        return 0;
    nlen = kl - (size_t)(nl + 1 - (const char *)k);
    if (nlen >= sizeof(num))
        return 0;
    memcpy(num, nl + 1, nlen);               /* keys are not NUL-terminated */
    num[nlen] = '\0';
    if ((ver = strtoll(num, NULL, 10)) <= rs->since)
        return 0;
    memcpy(msgid, v, vl);
    msgid[vl] = '\0';
    if ((rs->rc = msg_get(rs->t, rs->user, msgid, &m)) != PL_OK) {
        if (rs->rc == PL_NOTFOUND) {
            rs->rc = PL_OK;
            return 0;
        }
        return 1;
    }
    pl_state_format(m.flags, states, sizeof(states));
    for (char *p = states; *p; p++)       /* "read, saved" -> "read,saved" */
        if (*p == ' ')
            memmove(p, p + 1, strlen(p));
    pl_strbuf_addf(rs->body, "%s %s %" PRId64 "\r\n", msgid, *states ? states : "-", ver);
    rs->n++;
    return 0;
}

static int resync(struct applier *a, const char *sender, const struct pl_control *c)
{
    struct pl_strbuf body = {0}, b = {0};
    struct resync rs = {a->t, a->user, c->since, &body, 0, PL_OK};
    char prefix[KEYMAX];
    size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%s\n", a->user);
    const char *rcpt[1] = {sender};
    uint64_t id;
    int rc;

    rc = pl_store_scan(a->t, PL_T_CHG, prefix, plen, resync_line, &rs);
    if (rc < 0 || rs.rc != PL_OK) {
        pl_strbuf_free(&body);
        return rc < 0 ? rc : rs.rc;
    }
    pl_strbuf_addf(&b, "From: <%s>\r\nTo: <%s>\r\n", a->user, sender);
    pl_strbuf_addf(&b, "Subject: postlink: resync since %" PRId64 "\r\n", c->since);
    add_date(&b, a->o->now);
    add_msgid(&b, a->o, NULL, a->u, "resync");
    if (c->msgid[0])
        pl_strbuf_addf(&b, "In-Reply-To: %s\r\n", c->msgid);
    pl_strbuf_addf(&b, "X-Control: resync\r\nX-Control-Since: %" PRId64 "\r\n"
                   "X-Control-Version: %" PRId64 "\r\n", c->since, a->u->version);
    pl_strbuf_addf(&b, "X-Postlink-Forwarded: by %s; user=%s; version=%" PRId64 "\r\n",
                   a->o->hostname, a->user, a->u->version);
    pl_strbuf_adds(&b, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    pl_strbuf_addn(&b, body.s ? body.s : "", body.len);
    rc = pl_outbox_add_smtp(a->t, a->tag, a->user, rcpt, 1, b.s, b.len, &id);
    if (rc == PL_OK) {
        note_outbox(a->r, id);
        a->r->copies++;
        a->r->applied = rs.n;
    }
    pl_strbuf_free(&b);
    pl_strbuf_free(&body);
    return rc;
}

/* ---- controls ----------------------------------------------------------- */

static int hold(pl_txn *t, const struct pl_sync_opts *o, const char *user, const char *target,
                const struct stamp *st, enum pl_ctl_word w, const char *sender, const char *ctl_msgid)
{
    char k[KEYMAX], v[KEYMAX];
    size_t kl = clamp(snprintf(k, sizeof(k), "%s\n%s\n%020" PRId64, user, target, st->seq));
    int vl = snprintf(v, sizeof(v), "P %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %s %s\n%s",
                      o->now + o->pending_ttl, st->date, st->cver, st->seq,
                      pl_ctl_word_name(w), sender, ctl_msgid);
    return pl_store_put(t, PL_T_PENDING, k, kl, v, (size_t)vl);
}

static int seen_before(pl_txn *t, const struct pl_sync_opts *o, const char *user,
                       const struct pl_control *c, const char *target)
{
    char k[KEYMAX], v[32];
    void *old = NULL;
    size_t kl;
    int rc;

    if (c->msgid[0] == '\0')
        return PL_NOTFOUND;
    kl = clamp(snprintf(k, sizeof(k), "%s\n%s\n%s", user, c->msgid, target));
    rc = pl_store_get(t, PL_T_CTLSEEN, k, kl, &old, NULL, 1);
    free(old);
    if (rc != PL_NOTFOUND)
        return rc;
    snprintf(v, sizeof(v), "%" PRId64, o->now);
    rc = pl_store_put(t, PL_T_CTLSEEN, k, kl, v, strlen(v));
    return rc == PL_OK ? PL_NOTFOUND : rc;
}

static void make_tag(char *tag, size_t len, const char *user, const char *ctl_msgid)
{
    snprintf(tag, len, "%s %s", user, *ctl_msgid ? ctl_msgid : "-");
}

int pl_sync_control(pl_txn *t, const struct pl_sync_opts *o, const char *user,
                    const char *sender, const struct pl_control *c,
                    const char *const *exclude, size_t nexclude,
                    struct pl_sync_result *r)
{
    struct uver u;
    struct stamp st;
    char tag[KEYMAX];
    struct applier a = {t, o, user, tag, &u, r};
    const char **changed;
    size_t nchanged = 0;
    int rc;

    memset(r, 0, sizeof(*r));
    make_tag(tag, sizeof(tag), user, c->msgid);
    if ((rc = uver_get(t, user, &u)) != PL_OK)
        return rc;
    st.seq = ++u.seq;
    st.date = (c->date <= 0 || c->date > o->now + FUTURE_SLACK) ? o->now : c->date;
    st.cver = c->version > 0 ? c->version : 0;
    if (c->word == PL_CW_RESYNC) {
        if ((rc = resync(&a, sender, c)) == PL_OK)
            rc = uver_put(t, user, &u);
        r->version = u.version;
        return rc;
    }
    changed = pl_xcalloc(c->ntargets + 1, sizeof(*changed));
    for (size_t i = 0; i < c->ntargets && rc == PL_OK; i++) {
        const char *target = c->targets[i];
        struct msgrec m;
        enum outcome out;

        if ((rc = seen_before(t, o, user, c, target)) == PL_OK) {
            r->duplicate++;
            continue;
        }
        if (rc != PL_NOTFOUND)
            break;
        rc = msg_get(t, user, target, &m);
        if (rc == PL_NOTFOUND) {
            rc = hold(t, o, user, target, &st, c->word, sender, c->msgid);
            r->pending++;
            continue;
        }
        if (rc != PL_OK || (rc = apply_word(&a, target, &m, c->word, &st, &out)) != PL_OK)
            break;
        if (out == APPLIED) {
            r->applied++;
            changed[nchanged++] = target;
        } else if (out == UNCHANGED) {
            r->unchanged++;
        } else {
            r->stale++;
        }
    }
    if (rc == PL_OK)
        rc = uver_put(t, user, &u);
    if (rc == PL_OK)
        rc = fan_out(&a, sender, c->word, changed, nchanged, c->msgid, st.date, exclude, nexclude);
    r->version = u.version;
    free(changed);
    return rc;
}

/* ---- arrival of a target ------------------------------------------------ */

struct held {
    char *key;
    size_t klen;
    int expired;
    struct stamp st;
    int64_t expires;
    char word[16], sender[PL_ADDR_SIZE];
    char *ctl_msgid;
};

static int parse_held(const char *v, size_t vl, struct held *h)
{
    char buf[KEYMAX], flag;
    const char *nl;
    size_t n = vl < sizeof(buf) - 1 ? vl : sizeof(buf) - 1;

    memcpy(buf, v, n);
    buf[n] = '\0';
    if (sscanf(buf, "%c %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %15s %" PL_ADDR_MAX_S "s", &flag,
               &h->expires, &h->st.date, &h->st.cver, &h->st.seq, h->word, h->sender) != 7)
        return -1;
    h->expired = flag == 'E';
    nl = strchr(buf, '\n');
    h->ctl_msgid = pl_xstrdup(nl ? nl + 1 : "");
    return 0;
}

struct heldvec { struct held *v; size_t n, cap; };

static int collect_held(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct heldvec *hv = ctx;
    struct held h = {0};

    if (parse_held(v, vl, &h) != 0 || h.expired) {
        free(h.ctl_msgid);
        return 0;
    }
    if (hv->n == hv->cap) {
        hv->cap = hv->cap ? 2 * hv->cap : 4;
        hv->v = pl_xrealloc(hv->v, hv->cap * sizeof(*hv->v));
    }
    h.key = pl_xstrndup(k, kl);
    h.klen = kl;
    hv->v[hv->n++] = h;
    return 0;
}

int pl_sync_seen(pl_txn *t, const struct pl_sync_opts *o, const char *user,
                 const char *msgid, unsigned *flags, unsigned *released)
{
    struct msgrec m;
    struct heldvec hv = {0};
    struct uver u;
    struct pl_sync_result r;
    char prefix[KEYMAX], tag[KEYMAX];
    size_t plen;
    int rc;

    *flags = 0;
    *released = 0;
    rc = msg_get(t, user, msgid, &m);
    if (rc == PL_NOTFOUND) {
        m.seen = 1;
        m.arrived = o->now;
        rc = msg_put(t, user, msgid, &m);
    }
    if (rc != PL_OK)
        return rc;
    plen = (size_t)snprintf(prefix, sizeof(prefix), "%s\n%s\n", user, msgid);
    if ((rc = pl_store_scan(t, PL_T_PENDING, prefix, plen, collect_held, &hv)) < 0)
        goto out;
    rc = PL_OK;
    if (hv.n == 0)
        goto out;
    if ((rc = uver_get(t, user, &u)) != PL_OK)
        goto out;
    memset(&r, 0, sizeof(r));
    for (size_t i = 0; i < hv.n && rc == PL_OK; i++) {
        struct held *h = &hv.v[i];
        struct applier a = {t, o, user, tag, &u, &r};
        const char *target[1] = {msgid};
        enum pl_ctl_word w = pl_ctl_word_parse(h->word);
        enum outcome out;

        make_tag(tag, sizeof(tag), user, h->ctl_msgid);
        if ((rc = pl_store_del(t, PL_T_PENDING, h->key, h->klen)) != PL_OK)
            break;
        (*released)++;
        if (w == PL_CW_NONE || w == PL_CW_RESYNC)
            continue;
        if ((rc = apply_word(&a, msgid, &m, w, &h->st, &out)) == PL_OK && out == APPLIED)
            rc = fan_out(&a, h->sender, w, target, 1, h->ctl_msgid, h->st.date, NULL, 0);
    }
    if (rc == PL_OK)
        rc = uver_put(t, user, &u);
out:
    for (size_t i = 0; i < hv.n; i++) {
        free(hv.v[i].key);
        free(hv.v[i].ctl_msgid);
    }
    free(hv.v);
    *flags = m.flags;
    return rc;
}

/* ---- expiry and purging ------------------------------------------------- */

struct expire { pl_txn *t; int64_t now; unsigned max, n; const char *user; int purge; int rc; };

static int expire_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct expire *e = ctx;
    struct held h = {0};
    char *nv;
    const char *nl1 = memchr(k, '\n', kl), *nl2;

    if (parse_held(v, vl, &h) != 0 || nl1 == NULL)
        goto next;
    nl2 = memchr(nl1 + 1, '\n', kl - (size_t)(nl1 + 1 - (const char *)k));
    if (e->purge) {
        if (h.expired) {
            e->rc = pl_store_del(e->t, PL_T_PENDING, k, kl);
            e->n++;
        }
    } else if (!h.expired && h.expires <= e->now) {
        nv = pl_xstrndup(v, vl);
        nv[0] = 'E';
        e->rc = pl_store_put(e->t, PL_T_PENDING, k, kl, nv, vl);
        free(nv);
        msg_info("pending control expired: user=%.*s target=%.*s state=%s from=%s control=%s",
                 (int)(nl1 - (const char *)k), (const char *)k,
                 nl2 ? (int)(nl2 - nl1 - 1) : 0, nl1 + 1, h.word, h.sender,
                 *h.ctl_msgid ? h.ctl_msgid : "-");
        e->n++;
    }
next:
    free(h.ctl_msgid);
    if (e->rc != PL_OK)
        return 1;
    return e->max && e->n >= e->max;
}

int pl_sync_expire(pl_txn *t, int64_t now, unsigned max, unsigned *expired)
{
    struct expire e = {t, now, max, 0, NULL, 0, PL_OK};
    int rc = pl_store_scan(t, PL_T_PENDING, "", 0, expire_one, &e);
    *expired = e.n;
    return e.rc != PL_OK ? e.rc : (rc < 0 ? rc : PL_OK);
}

struct dpurge { pl_txn *t; const char *table; int64_t before; unsigned n; int rc; };

static int purge_older_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct dpurge *d = ctx;
    char buf[32];
    size_t n = vl < sizeof(buf) - 1 ? vl : sizeof(buf) - 1;

    memcpy(buf, v, n);
    buf[n] = '\0';
    if (strtoll(buf, NULL, 10) < d->before) {
        if ((d->rc = pl_store_del(d->t, d->table, k, kl)) != PL_OK)
            return 1;
        d->n++;
    }
    return 0;
}

int pl_sync_purge_older(pl_txn *t, const char *table, int64_t before, unsigned *purged)
{
    struct dpurge d = {t, table, before, 0, PL_OK};
    int rc = pl_store_scan(t, table, "", 0, purge_older_one, &d);
    *purged = d.n;
    if (d.rc != PL_OK)
        return d.rc;
    return rc < 0 ? rc : PL_OK;
}

static int purge_idle_one(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct dpurge *d = ctx;
    char buf[128];
    int seen;
    unsigned flags;
    int64_t ver, arrived;
    size_t n = vl < sizeof(buf) - 1 ? vl : sizeof(buf) - 1;

    memcpy(buf, v, n);
    buf[n] = '\0';
    if (sscanf(buf, "%d %u %" SCNd64 " %" SCNd64, &seen, &flags, &ver, &arrived) == 4 &&
        flags == 0 && ver == 0 && arrived < d->before) {
        if ((d->rc = pl_store_del(d->t, PL_T_MSG, k, kl)) != PL_OK)
            return 1;
        d->n++;
    }
    return 0;
}

int pl_sync_purge_idle(pl_txn *t, int64_t now, int64_t ttl, unsigned *purged)
{
    struct dpurge d = {t, PL_T_MSG, now - ttl, 0, PL_OK};
    int rc = pl_store_scan(t, PL_T_MSG, "", 0, purge_idle_one, &d);
    *purged = d.n;
    if (d.rc != PL_OK)
        return d.rc;
    return rc < 0 ? rc : PL_OK;
}

int pl_sync_purge(pl_txn *t, const char *user, unsigned *purged)
{
    struct expire e = {t, 0, 0, 0, user, 1, PL_OK};
    char prefix[KEYMAX];
    size_t plen = user ? (size_t)snprintf(prefix, sizeof(prefix), "%s\n", user) : 0;
    int rc = pl_store_scan(t, PL_T_PENDING, prefix, plen, expire_one, &e);
    *purged = e.n;
    if (e.rc != PL_OK)
        return e.rc;
    return rc < 0 ? rc : PL_OK;
}

int pl_sync_purge_dedupe(pl_txn *t, int64_t now, int64_t ttl, unsigned *purged)
{
    return pl_sync_purge_older(t, PL_T_CTLSEEN, now - ttl, purged);
}

/* ---- reading back ------------------------------------------------------- */

struct slist { pl_msg_state_fn fn; void *ctx; };

static int state_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct slist *s = ctx;
    char key[KEYMAX], val[512], *nl;
    struct pl_msg_state ms;
    int seen = 0;

    snprintf(key, sizeof(key), "%.*s", (int)kl, (const char *)k);
    snprintf(val, sizeof(val), "%.*s", (int)vl, (const char *)v);
    if ((nl = strchr(key, '\n')) == NULL)
        return 0;
    *nl = '\0';
    memset(&ms, 0, sizeof(ms));
    ms.user = key;
    ms.msgid = nl + 1;
    if (sscanf(val, "%d %u %" SCNd64 " %" SCNd64, &seen, &ms.flags, &ms.version, &ms.arrived) != 4)
        return 0;
    return s->fn(s->ctx, &ms);
}

int pl_sync_state_list(pl_txn *t, const char *user, const char *msgid,
                       pl_msg_state_fn fn, void *ctx)
{
    struct slist s = {fn, ctx};
    char prefix[KEYMAX];
    size_t plen;

    if (msgid) {
        void *v = NULL;
        size_t vl;
        int rc;
        plen = key2(prefix, user, msgid);
        if ((rc = pl_store_get(t, PL_T_MSG, prefix, plen, &v, &vl, 0)) != PL_OK)
            return rc;
        rc = state_visit(&s, prefix, plen, v, vl);
        free(v);
        return rc > 0 ? PL_OK : rc;
    }
    plen = (size_t)snprintf(prefix, sizeof(prefix), "%s\n", user);
    int rc = pl_store_scan(t, PL_T_MSG, prefix, plen, state_visit, &s);
    return rc > 0 ? PL_OK : rc;
}

int64_t pl_sync_user_version(pl_txn *t, const char *user)
{
    void *v = NULL;
    int64_t n = 0;
    if (pl_store_get(t, PL_T_UVER, user, strlen(user), &v, NULL, 0) == PL_OK)
        n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

struct plist { pl_pending_fn fn; void *ctx; };

static int pending_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct plist *p = ctx;
    char key[KEYMAX], *nl1, *nl2;
    struct held h = {0};
    struct pl_pending_info pi;
    int rc;

    snprintf(key, sizeof(key), "%.*s", (int)kl, (const char *)k);
    if ((nl1 = strchr(key, '\n')) == NULL || (nl2 = strchr(nl1 + 1, '\n')) == NULL ||
        parse_held(v, vl, &h) != 0)
        return 0;
    *nl1 = *nl2 = '\0';
    pi.user = key;
    pi.target = nl1 + 1;
    pi.word = h.word;
    pi.sender = h.sender;
    pi.ctl_msgid = h.ctl_msgid;
    pi.expired = h.expired;
    pi.date = h.st.date;
    pi.expires = h.expires;
    rc = p->fn(p->ctx, &pi);
    free(h.ctl_msgid);
    return rc;
}

int pl_sync_pending_list(pl_txn *t, const char *user, pl_pending_fn fn, void *ctx)
{
    struct plist p = {fn, ctx};
    char prefix[KEYMAX];
    size_t plen = user ? (size_t)snprintf(prefix, sizeof(prefix), "%s\n", user) : 0;
    int rc = pl_store_scan(t, PL_T_PENDING, prefix, plen, pending_visit, &p);
    return rc > 0 ? PL_OK : rc;
}
