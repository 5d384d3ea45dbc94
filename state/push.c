/* push.c -- capability 5's store (push.h): devices and their hashed tokens,
 * messages with their bytes, each device's queue with sent marks, the
 * acknowledgement (delete or move to the processed store), withdrawal and
 * the retention report.  The key formats are in push.h. */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mirror.h"
#include "push.h"
#include "push_sub.h"
#include "strutil.h"

#define SEQ_HEX 16
#define KEY_MAX (PL_ADDR_SIZE + PL_PNAME_MAX + PL_PREF_MAX + 8)

/* ---- small helpers ---------------------------------------------------- */

static int random_hex(char *out, size_t nbytes)
{
    unsigned char r[32];
    if (nbytes > sizeof(r) || getrandom(r, nbytes, 0) != (ssize_t)nbytes)
        return -1;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    OPENSSL_cleanse(r, sizeof(r));
    return 0;
}

static int is_hex(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int id_ok(const char *id) { return id != NULL && is_hex(id, PL_PID_LEN); }

/* printable, no spaces, 1..max bytes */
static int word_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* printable (spaces allowed, as in a quoted local part), 1..max bytes */
static int text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static size_t ukey(const char *user, char *out, size_t outlen)
{
    if (user == NULL || pl_addr_check(user) != NULL || pl_addr_canon(user, out, outlen) != 0)
        return 0;
    return strlen(out);
}

/* "<a>\n<b>" into out: its length, 0 when it does not fit */
static size_t key2(const char *a, const char *b, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s\n%s", a, b);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

static size_t seqkey(const char *a, uint64_t seq, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s\n%016" PRIx64, a, seq);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

static char *val_str(const void *v, size_t vl)
{
    char *c = pl_xmalloc(vl + 1);
    memcpy(c, v, vl);
    c[vl] = '\0';
    return c;
}

static int64_t field_i64(const char *text, const char *name)
{
    char v[32];
    pl_mstatus_field(text, name, v, sizeof(v));
    return strtoll(v, NULL, 10);
}

/* a field that may be absent: -1 then */
static int64_t field_opt(const char *text, const char *name)
{
    char v[32] = "";
    pl_mstatus_field(text, name, v, sizeof(v));
    return v[0] ? strtoll(v, NULL, 10) : -1;
}

static int get_text(pl_txn *t, const char *table, const char *key, size_t klen, char **text,
                    int upd)
{
    return pl_store_get(t, table, key, klen, (void **)text, NULL, upd);
}

static int exists(pl_txn *t, const char *table, const char *key, size_t klen)
{
    char *v = NULL;
    int rc = get_text(t, table, key, klen, &v, 0);
    free(v);
    return rc;
}


static int del_opt(pl_txn *t, const char *table, const char *key, size_t klen)
{
    int rc = pl_store_del(t, table, key, klen);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

/* SHA-256 of s as 64 hex digits into out (65 bytes) */
static int hash_hex(const char *s, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static int receipt(pl_txn *t, const struct pl_pdev *d, const char *id, char *val, size_t vlen);

/* ---- devices ---------------------------------------------------------- */

const char *pl_pdev_name_check(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PL_PNAME_MAX)
        return "a device name has 1 to 64 characters";
    for (; *name; name++)
        if (!isalnum((unsigned char)*name) && !strchr("._@+-", *name))
            return "a device name has only letters, digits and ._@+-";
    return NULL;
}

static void pdev_parse_id(const char *sel, const char *text, struct pl_pdev *d)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->sel, sizeof(d->sel), "%s", sel);
    pl_mstatus_field(text, "user", d->user, sizeof(d->user));
    pl_mstatus_field(text, "name", d->name, sizeof(d->name));
    d->created = field_i64(text, "created");
    d->room_bytes = field_opt(text, "room");
    d->room_count = field_opt(text, "slots");
}

static int pdev_by_sel(pl_txn *t, const char *sel, struct pl_pdev *d, char *hash, size_t hlen)
{
    char *text;
    int rc;
    if (!is_hex(sel, PL_PSEL_LEN))
        return PL_NOTFOUND;
    if ((rc = get_text(t, PL_T_PDEVID, sel, PL_PSEL_LEN, &text, 0)) != PL_OK)
        return rc;
    pdev_parse_id(sel, text, d);
    if (hash)
        pl_mstatus_field(text, "hash", hash, hlen);
    free(text);
    return PL_OK;
}

struct devs { size_t n; struct pl_pdev d[PL_PDEV_MAX + 1]; };

static int devs_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct devs *ds = ctx;
    struct pl_pdev *d;
    const char *nl = memchr(k, '\n', kl);
    size_t ul, nlen;
    char *text;
    if (nl == NULL || ds->n >= PL_PDEV_MAX + 1)
        return 0;
    ul = (size_t)(nl - (const char *)k);
    nlen = kl - ul - 1;
    d = &ds->d[ds->n];
    memset(d, 0, sizeof(*d));
    d->room_bytes = d->room_count = -1;      /* in pdevid only */
    if (ul >= sizeof(d->user) || nlen > PL_PNAME_MAX)
        return 0;
    memcpy(d->user, k, ul);
    memcpy(d->name, nl + 1, nlen);
    text = val_str(v, vl);
    pl_mstatus_field(text, "id", d->sel, sizeof(d->sel));
    d->created = field_i64(text, "created");
    free(text);
    ds->n++;
    return 0;
}

/* the devices of a canonical user (at most PL_PDEV_MAX + 1 are read) */
static int devs_of(pl_txn *t, const char *u, struct devs *ds)
{
    char pre[PL_ADDR_SIZE + 1];
    size_t n = key2(u, "", pre, sizeof(pre));
    ds->n = 0;
    return n ? pl_store_scan(t, PL_T_PDEV, pre, n, devs_visit, ds) : PL_ERR;
}

static int new_sel(pl_txn *t, char *sel)
{
    for (int i = 0; i < 4; i++) {
        int rc;
        if (random_hex(sel, PL_PSEL_LEN / 2) != 0)
            return PL_ERR;
        if ((rc = exists(t, PL_T_PDEVID, sel, PL_PSEL_LEN)) != PL_OK)
            return rc == PL_NOTFOUND ? PL_OK : rc;
    }
    return PL_ERR;
}

static int pdevid_write(pl_txn *t, const struct pl_pdev *d, const char *hash)
{
    char val[512];
    int n = snprintf(val, sizeof(val), "user=%s\nname=%s\nhash=%s\ncreated=%" PRId64 "\n",
                     d->user, d->name, hash, d->created);
    if (d->room_bytes >= 0)
        n += snprintf(val + n, sizeof(val) - (size_t)n, "room=%" PRId64 "\n", d->room_bytes);
    if (d->room_count >= 0)
        n += snprintf(val + n, sizeof(val) - (size_t)n, "slots=%" PRId64 "\n", d->room_count);
    return pl_store_put(t, PL_T_PDEVID, d->sel, PL_PSEL_LEN, val, strlen(val));
}

static int pdev_write(pl_txn *t, const struct pl_pdev *d, const char *hash)
{
    char key[KEY_MAX], val[512];
    size_t klen = key2(d->user, d->name, key, sizeof(key));
    int rc;
    snprintf(val, sizeof(val), "id=%s\ncreated=%" PRId64 "\n", d->sel, d->created);
    if ((rc = pl_store_put(t, PL_T_PDEV, key, klen, val, strlen(val))) != PL_OK)
        return rc;
    return pdevid_write(t, d, hash);
}

int pl_pdev_set_room(pl_txn *t, const struct pl_pdev *d)
{
    struct pl_pdev cur;
    char hash[65] = "", *text;
    int rc;
    if (!is_hex(d->sel, PL_PSEL_LEN))
        return PL_NOTFOUND;
    if ((rc = get_text(t, PL_T_PDEVID, d->sel, PL_PSEL_LEN, &text, 1)) != PL_OK)
        return rc;
    pdev_parse_id(d->sel, text, &cur);
    pl_mstatus_field(text, "hash", hash, sizeof(hash));
    free(text);
    cur.room_bytes = d->room_bytes < 0 ? -1 : d->room_bytes;
    cur.room_count = d->room_count < 0 ? -1 : d->room_count;
    return pdevid_write(t, &cur, hash);
}

int pl_pdev_add(pl_txn *t, const char *user, const char *name, int64_t now, char *token,
                size_t toklen, const char **why)
{
    struct pl_pdev d = {.room_bytes = -1, .room_count = -1};
    struct devs *ds;
    char secret[PL_PSECRET_LEN + 1], hash[65];
    int rc;
    *why = NULL;
    if (ukey(user, d.user, sizeof(d.user)) == 0)
        return *why = "the user is not an address (local@domain)", PL_ERR;
    if ((*why = pl_pdev_name_check(name)) != NULL || toklen < PL_PTOKEN_LEN + 1)
        return PL_ERR;
    snprintf(d.name, sizeof(d.name), "%s", name);
    ds = pl_xmalloc(sizeof(*ds));
    rc = devs_of(t, d.user, ds);
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++)
        if (strcmp(ds->d[i].name, d.name) == 0)
            *why = "exists", rc = PL_ERR;
    if (rc == PL_OK && ds->n >= PL_PDEV_MAX)
        *why = "too many devices", rc = PL_ERR;
    free(ds);
    if (rc != PL_OK || (rc = new_sel(t, d.sel)) != PL_OK)
        return rc;
    if (random_hex(secret, PL_PSECRET_LEN / 2) != 0 || hash_hex(secret, hash) != 0)
        return PL_ERR;
    d.created = now;
    if ((rc = pdev_write(t, &d, hash)) == PL_OK)
        snprintf(token, toklen, "%s.%s", d.sel, secret);
    OPENSSL_cleanse(secret, sizeof(secret));
    return rc;
}

int pl_pdev_auth(pl_txn *t, const char *token, struct pl_pdev *d)
{
    char sel[PL_PSEL_LEN + 1], hash[65], want[65] = "";
    int rc;
    if (token == NULL || strlen(token) != PL_PTOKEN_LEN || token[PL_PSEL_LEN] != '.' ||
        !is_hex(token + PL_PSEL_LEN + 1, PL_PSECRET_LEN))
        return PL_NOTFOUND;
    memcpy(sel, token, PL_PSEL_LEN);
    sel[PL_PSEL_LEN] = '\0';
    if ((rc = pdev_by_sel(t, sel, d, want, sizeof(want))) != PL_OK)
        return rc;
    if (hash_hex(token + PL_PSEL_LEN + 1, hash) != 0)
        return PL_ERR;
    if (strlen(want) != 64 || CRYPTO_memcmp(hash, want, 64) != 0) {
        memset(d, 0, sizeof(*d));
        return PL_NOTFOUND;
    }
    return PL_OK;
}

int pl_pdev_get(pl_txn *t, const char *user, const char *name, struct pl_pdev *d)
{
    char u[PL_ADDR_SIZE], key[KEY_MAX], sel[PL_PSEL_LEN + 1], *text;
    size_t klen;
    int rc;
    if (ukey(user, u, sizeof(u)) == 0 || (klen = key2(u, name, key, sizeof(key))) == 0)
        return PL_NOTFOUND;
    if ((rc = get_text(t, PL_T_PDEV, key, klen, &text, 0)) != PL_OK)
        return rc;
    pl_mstatus_field(text, "id", sel, sizeof(sel));
    free(text);
    return pdev_by_sel(t, sel, d, NULL, 0);
}

struct dlist { pl_pdev_fn fn; void *ctx; };

static int dlist_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct dlist *l = ctx;
    struct devs one;
    one.n = 0;
    devs_visit(&one, k, kl, v, vl);
    return one.n ? l->fn(l->ctx, &one.d[0]) : 0;
}

int pl_pdev_list(pl_txn *t, const char *user, pl_pdev_fn fn, void *ctx)
{
    struct dlist l = {fn, ctx};
    char u[PL_ADDR_SIZE], pre[PL_ADDR_SIZE + 1];
    size_t n = 0;
    if (user != NULL) {
        if (ukey(user, u, sizeof(u)) == 0)
            return PL_OK;
        n = key2(u, "", pre, sizeof(pre));
    }
    return pl_store_scan(t, PL_T_PDEV, user ? pre : "", n, dlist_visit, &l);
}

/* ---- message records -------------------------------------------------- */

static void meta_format(const struct pl_pmsg *m, struct pl_strbuf *b)
{
    pl_strbuf_addf(b, "user=%s\nseq=%" PRIu64 "\nsize=%" PRIu64 "\ntype=%s\ndate=%" PRId64
                   "\narrived=%" PRId64 "\nsender=%s\nref=%s\nqueued=%u\nkept=%u\n",
                   m->user, m->seq, m->size, m->type, m->date, m->arrived, m->sender, m->ref,
                   m->queued, m->kept);
}

static void meta_parse(const char *id, const char *text, struct pl_pmsg *m)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    pl_mstatus_field(text, "user", m->user, sizeof(m->user));
    m->seq = (uint64_t)field_i64(text, "seq");
    m->size = (uint64_t)field_i64(text, "size");
    pl_mstatus_field(text, "type", m->type, sizeof(m->type));
    m->date = field_i64(text, "date");
    m->arrived = field_i64(text, "arrived");
    pl_mstatus_field(text, "sender", m->sender, sizeof(m->sender));
    pl_mstatus_field(text, "ref", m->ref, sizeof(m->ref));
    m->queued = (unsigned)field_i64(text, "queued");
    m->kept = (unsigned)field_i64(text, "kept");
}

static int meta_put(pl_txn *t, const struct pl_pmsg *m)
{
    struct pl_strbuf b = {0};
    int rc;
    meta_format(m, &b);
    rc = pl_store_put(t, PL_T_PMSG, m->id, PL_PID_LEN, b.s, b.len);
    pl_strbuf_free(&b);
    return rc;
}

int pl_pmsg_meta(pl_txn *t, const char *id, struct pl_pmsg *m, int for_update)
{
    char *text;
    int rc;
    if (!id_ok(id))
        return PL_NOTFOUND;
    if ((rc = get_text(t, PL_T_PMSG, id, PL_PID_LEN, &text, for_update)) != PL_OK)
        return rc;
    meta_parse(id, text, m);
    free(text);
    return PL_OK;
}

int pl_pmsg_get(pl_txn *t, const char *id, void **bytes, size_t *len)
{
    if (!id_ok(id))
        return PL_NOTFOUND;
    return pl_store_get(t, PL_T_PBODY, id, PL_PID_LEN, bytes, len, 0);
}

/* the record, bytes and indexes of a message no one holds any more */
static int msg_remove(pl_txn *t, const struct pl_pmsg *m)
{
    char key[KEY_MAX];
    size_t klen = seqkey(m->user, m->seq, key, sizeof(key));
    int rc;
    if ((rc = del_opt(t, PL_T_PMSG, m->id, PL_PID_LEN)) != PL_OK ||
        (rc = del_opt(t, PL_T_PBODY, m->id, PL_PID_LEN)) != PL_OK ||
        (rc = del_opt(t, PL_T_PUSER, key, klen)) != PL_OK)
        return rc;
    if (m->ref[0] && (klen = key2(m->user, m->ref, key, sizeof(key))) != 0) {
        char *cur = NULL;
        /* only if the reference still names this message */
        if ((rc = get_text(t, PL_T_PREF, key, klen, &cur, 1)) == PL_OK && strcmp(cur, m->id) == 0)
            rc = pl_store_del(t, PL_T_PREF, key, klen);
        free(cur);
        return rc == PL_NOTFOUND ? PL_OK : rc;
    }
    return PL_OK;
}

/* Drops dq queue entries and dk processed entries from the message's counts,
 * removing it when none is left. */
static int unref(pl_txn *t, const char *id, unsigned dq, unsigned dk)
{
    struct pl_pmsg m;
    int rc = pl_pmsg_meta(t, id, &m, 1);
    if (rc != PL_OK)
        return rc == PL_NOTFOUND ? PL_OK : rc;
    m.queued = m.queued > dq ? m.queued - dq : 0;
    m.kept = m.kept > dk ? m.kept - dk : 0;
    return m.queued == 0 && m.kept == 0 ? msg_remove(t, &m) : meta_put(t, &m);
}

/* ---- device queue rows ----------------------------------------------- */

struct qrow { char id[PL_PID_LEN + 1]; char state; int64_t when; };

static int qrow_parse(const char *text, struct qrow *r)
{
    char st = 0;
    long long when = 0;
    memset(r, 0, sizeof(*r));
    if (sscanf(text, "%32s %c %lld", r->id, &st, &when) < 1)
        return -1;
    if (!id_ok(r->id))
        return -1;
    if (st == 0 || isdigit((unsigned char)st)) {          /* pdone: "<id> <time>" */
        r->state = PL_PST_MOVED;
        r->when = strtoll(text + PL_PID_LEN, NULL, 10);
    } else {
        r->state = st;
        r->when = when;
    }
    return 0;
}

/* the row of table (pq, pdone) for device sel and sequence seq */
static int qrow_get(pl_txn *t, const char *table, const char *sel, uint64_t seq, struct qrow *r,
                    int upd)
{
    char key[64], *text;
    size_t klen = seqkey(sel, seq, key, sizeof(key));
    int rc = get_text(t, table, key, klen, &text, upd);
    if (rc != PL_OK)
        return rc;
    rc = qrow_parse(text, r) == 0 ? PL_OK : PL_ERR;
    free(text);
    return rc;
}

static int qrow_put(pl_txn *t, const char *table, const char *sel, uint64_t seq, const char *val)
{
    char key[64];
    size_t klen = seqkey(sel, seq, key, sizeof(key));
    return pl_store_put(t, table, key, klen, val, strlen(val));
}

static int qrow_del(pl_txn *t, const char *table, const char *sel, uint64_t seq)
{
    char key[64];
    size_t klen = seqkey(sel, seq, key, sizeof(key));
    return pl_store_del(t, table, key, klen);
}

/* ---- putting a message ------------------------------------------------- */

static int next_seq(pl_txn *t, const char *u, uint64_t *seq)
{
    char *text = NULL, val[32];
    int rc = get_text(t, PL_T_PSEQ, u, strlen(u), &text, 1);
    if (rc != PL_OK && rc != PL_NOTFOUND)
        return rc;
    *seq = (rc == PL_OK ? strtoull(text, NULL, 10) : 0) + 1;
    free(text);
    snprintf(val, sizeof(val), "%" PRIu64, *seq);
    return pl_store_put(t, PL_T_PSEQ, u, strlen(u), val, strlen(val));
}

static int new_id(pl_txn *t, char *id)
{
    for (int i = 0; i < 4; i++) {
        int rc;
        if (random_hex(id, PL_PID_LEN / 2) != 0)
            return PL_ERR;
        if ((rc = exists(t, PL_T_PMSG, id, PL_PID_LEN)) != PL_OK)
            return rc == PL_NOTFOUND ? PL_OK : rc;
    }
    return PL_ERR;
}

static int msg_in_check(const struct pl_pmsg_in *in, struct pl_pmsg *m)
{
    memset(m, 0, sizeof(*m));
    if (ukey(in->user, m->user, sizeof(m->user)) == 0 || in->bytes == NULL || in->len == 0)
        return -1;
    if (in->type && !word_ok(in->type, sizeof(m->type) - 1))
        return -1;
    if (in->sender && in->sender[0] && !text_ok(in->sender, PL_ADDR_MAX))
        return -1;
    if (in->ref && !word_ok(in->ref, PL_PREF_MAX))
        return -1;
    snprintf(m->type, sizeof(m->type), "%s", in->type ? in->type : "message/rfc822");
    snprintf(m->sender, sizeof(m->sender), "%s", in->sender ? in->sender : "");
    snprintf(m->ref, sizeof(m->ref), "%s", in->ref ? in->ref : "");
    m->size = in->len;
    m->date = in->date;
    return 0;
}

static int msg_index(pl_txn *t, const struct pl_pmsg *m)
{
    char key[KEY_MAX];
    size_t klen = seqkey(m->user, m->seq, key, sizeof(key));
    int rc = pl_store_put(t, PL_T_PUSER, key, klen, m->id, PL_PID_LEN);
    if (rc != PL_OK || m->ref[0] == '\0')
        return rc;
    klen = key2(m->user, m->ref, key, sizeof(key));
    return pl_store_put(t, PL_T_PREF, key, klen, m->id, PL_PID_LEN);
}

int pl_pmsg_put(pl_txn *t, const struct pl_pmsg_in *in, int64_t now, struct pl_pmsg *out)
{
    struct pl_pmsg m;
    struct devs *ds = pl_xmalloc(sizeof(*ds));
    char val[PL_PID_LEN + 4];
    int rc = PL_ERR;
    if (msg_in_check(in, &m) != 0)
        goto out;
    if ((rc = devs_of(t, m.user, ds)) != PL_OK)
        goto out;
    if (ds->n == 0) {
        rc = PL_NOTFOUND;
        goto out;
    }
    if ((rc = new_id(t, m.id)) != PL_OK || (rc = next_seq(t, m.user, &m.seq)) != PL_OK)
        goto out;
    m.arrived = now;
    m.queued = (unsigned)ds->n;
    if ((rc = meta_put(t, &m)) != PL_OK ||
        (rc = pl_store_put(t, PL_T_PBODY, m.id, PL_PID_LEN, in->bytes, in->len)) != PL_OK ||
        (rc = msg_index(t, &m)) != PL_OK)
        goto out;
    snprintf(val, sizeof(val), "%s W", m.id);
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++)
        rc = qrow_put(t, PL_T_PQ, ds->d[i].sel, m.seq, val);
    if (rc == PL_OK && out)
        *out = m;
out:
    free(ds);
    return rc;
}

/* ---- withdrawal, drop ------------------------------------------------- */

/* the message user means by what (an id or a reference) */
static int resolve(pl_txn *t, const char *u, const char *what, struct pl_pmsg *m)
{
    char key[KEY_MAX], *id;
    size_t klen;
    int rc;
    if (id_ok(what) && pl_pmsg_meta(t, what, m, 1) == PL_OK && strcmp(m->user, u) == 0)
        return PL_OK;
    if (!word_ok(what, PL_PREF_MAX) || (klen = key2(u, what, key, sizeof(key))) == 0)
        return PL_NOTFOUND;
    if ((rc = get_text(t, PL_T_PREF, key, klen, &id, 0)) != PL_OK)
        return rc;
    rc = pl_pmsg_meta(t, id, m, 1);
    free(id);
    return rc == PL_OK && strcmp(m->user, u) != 0 ? PL_NOTFOUND : rc;
}

int pl_pmsg_withdraw(pl_txn *t, const char *user, const char *what, unsigned *n)
{
    char u[PL_ADDR_SIZE];
    struct pl_pmsg m;
    struct devs *ds;
    unsigned gone = 0;
    int rc;
    if (n)
        *n = 0;
    if (ukey(user, u, sizeof(u)) == 0 || what == NULL)
        return PL_NOTFOUND;
    if ((rc = resolve(t, u, what, &m)) != PL_OK)
        return rc;
    ds = pl_xmalloc(sizeof(*ds));
    rc = devs_of(t, u, ds);
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++) {
        struct qrow r;
        int g = qrow_get(t, PL_T_PQ, ds->d[i].sel, m.seq, &r, 1);
        if (g == PL_NOTFOUND || (g == PL_OK && r.state != PL_PST_WAIT))
            continue;
        if ((rc = g) == PL_OK && (rc = qrow_del(t, PL_T_PQ, ds->d[i].sel, m.seq)) == PL_OK)
            gone++;
    }
    free(ds);
    if (rc == PL_OK && gone)
        rc = unref(t, m.id, gone, 0);
    if (n)
        *n = gone;
    return rc;
}

int pl_pmsg_drop(pl_txn *t, const char *id)
{
    struct pl_pmsg m;
    struct devs *ds;
    int rc = pl_pmsg_meta(t, id, &m, 1);
    if (rc != PL_OK)
        return rc;
    ds = pl_xmalloc(sizeof(*ds));
    rc = devs_of(t, m.user, ds);
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++) {
        char key[64];
        size_t klen = seqkey(ds->d[i].sel, m.seq, key, sizeof(key));
        if ((rc = del_opt(t, PL_T_PQ, key, klen)) == PL_OK)
            rc = del_opt(t, PL_T_PDONE, key, klen);
    }
    free(ds);
    return rc == PL_OK ? msg_remove(t, &m) : rc;
}

int pl_pmsg_expire(pl_txn *t, const char *id, int apply, unsigned *waiting, int *reached)
{
    struct pl_pmsg m;
    struct devs *ds;
    unsigned w = 0;
    int got = 0;
    int rc = pl_pmsg_meta(t, id, &m, apply);
    *waiting = 0;
    *reached = 0;
    if (rc != PL_OK)
        return rc;
    got = m.kept > 0;
    ds = pl_xmalloc(sizeof(*ds));
    rc = devs_of(t, m.user, ds);
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++) {
        struct qrow r;
        int g = qrow_get(t, PL_T_PQ, ds->d[i].sel, m.seq, &r, apply);
        if (g == PL_OK && r.state == PL_PST_WAIT) {
            w++;
            if (apply)
                rc = qrow_del(t, PL_T_PQ, ds->d[i].sel, m.seq);
        } else if (g == PL_OK) {
            got = 1;                          /* sent: the device has it */
        } else if (g != PL_NOTFOUND) {
            rc = g;
        } else if ((g = receipt(t, &ds->d[i], m.id, NULL, 0)) == PL_OK) {
            got = 1;                          /* acknowledged */
        } else if (g != PL_NOTFOUND) {
            rc = g;
        }
    }
    free(ds);
    if (rc == PL_OK && apply && w)
        rc = unref(t, m.id, w, 0);
    *waiting = w;
    *reached = got;
    return rc;
}

int pl_pack_note(pl_txn *t, const struct pl_pdev *d, const char *id, int64_t now)
{
    char val[32];
    if (!id_ok(id))
        return PL_ERR;
    snprintf(val, sizeof(val), "%" PRId64 " d", now);
    return receipt(t, d, id, val, strlen(val));
}

/* ---- a device's queue ------------------------------------------------- */

/* the first row visited (the smallest key with the scan's prefix) */
static int first_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct qrow *r = ctx;
    char *text = val_str(v, vl);
    int bad = qrow_parse(text, r);
    (void)k, (void)kl;
    free(text);
    return bad ? 0 : 1;
}

static int64_t last_seq(pl_txn *t, const char *u)
{
    char *text;
    int64_t n;
    if (get_text(t, PL_T_PSEQ, u, strlen(u), &text, 0) != PL_OK)
        return 0;
    n = strtoll(text, NULL, 10);
    free(text);
    return n;
}

/* The device's first row after seq: the store seeks by prefix only, so
 * the smallest key above "<sel>\n<seq>" is found digit by digit, longest
 * common prefix first (one seek when the next seq is there), trying no
 * prefix whose smallest key is above the user's last seq (none at all
 * after the last message). */
static int row_after(pl_txn *t, const struct pl_pdev *d, uint64_t seq, struct qrow *r)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t last = (uint64_t)last_seq(t, d->user);
    char key[64];
    size_t base = seqkey(d->sel, seq, key, sizeof(key)) - SEQ_HEX;
    for (int p = SEQ_HEX - 1; p >= 0; p--) {
        char keep = key[base + (size_t)p];
        unsigned sh = 4u * (unsigned)(SEQ_HEX - 1 - p);
        uint64_t high = (seq >> sh) & ~(uint64_t)0xf;     /* the digits before p */
        for (const char *c = strchr(hex, keep) + 1; *c; c++) {
            uint64_t low = (high | (uint64_t)(c - hex)) << sh;  /* smallest key with c at p */
            int rc;
            if (low > last)
                break;
            key[base + (size_t)p] = *c;
            r->id[0] = '\0';
            if ((rc = pl_store_scan(t, PL_T_PQ, key, base + (size_t)p + 1, first_visit, r)) < 0)
                return rc;
            if (r->id[0])
                return PL_OK;
        }
        key[base + (size_t)p] = keep;
    }
    return PL_NOTFOUND;
}

/* the device's first row, or its row for m */
static int row_of(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
                  struct qrow *r)
{
    char pre[PL_PSEL_LEN + 2];
    size_t plen = key2(d->sel, "", pre, sizeof(pre));
    int rc;
    if (id && id[0]) {
        if ((rc = pl_pmsg_meta(t, id, m, 0)) != PL_OK)
            return rc;
        if (strcmp(m->user, d->user) != 0)
            return PL_NOTFOUND;
        return qrow_get(t, PL_T_PQ, d->sel, m->seq, r, 0);
    }
    r->id[0] = '\0';
    if ((rc = pl_store_scan(t, PL_T_PQ, pre, plen, first_visit, r)) < 0)
        return rc;
    if (r->id[0] == '\0')
        return PL_NOTFOUND;
    if ((rc = pl_pmsg_meta(t, r->id, m, 0)) != PL_OK)
        return rc == PL_NOTFOUND ? PL_ERR : rc;       /* a row without its message */
    return PL_OK;
}

int pl_pq_get(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
              char *state, char *next)
{
    struct qrow r, n;
    int rc = row_of(t, d, id, m, &r);
    if (rc != PL_OK)
        return rc;
    if ((rc = row_after(t, d, m->seq, &n)) < 0)
        return rc;
    if (state)
        *state = r.state;
    memcpy(next, rc == PL_OK ? n.id : "", rc == PL_OK ? sizeof(n.id) : 1);
    return PL_OK;
}

/* the device's own message id and its queue row (write-locked with upd) */
static int own_row_upd(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
                       struct qrow *r, int upd)
{
    int rc = pl_pmsg_meta(t, id, m, upd);
    if (rc != PL_OK)
        return rc;
    if (strcmp(m->user, d->user) != 0)
        return PL_PACK_FOREIGN;
    return qrow_get(t, PL_T_PQ, d->sel, m->seq, r, upd);
}

static int own_row(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
                   struct qrow *r)
{
    return own_row_upd(t, d, id, m, r, 1);
}

int pl_pq_sent(pl_txn *t, const struct pl_pdev *d, const char *id, int64_t now)
{
    struct pl_pmsg m;
    struct qrow r;
    char val[PL_PID_LEN + 32];
    int rc = own_row(t, d, id, &m, &r);
    if (rc == PL_PACK_FOREIGN)
        return PL_NOTFOUND;
    if (rc != PL_OK)
        return rc;
    snprintf(val, sizeof(val), "%s S %" PRId64, m.id, now);
    return qrow_put(t, PL_T_PQ, d->sel, m.seq, val);
}

static int receipt(pl_txn *t, const struct pl_pdev *d, const char *id, char *val, size_t vlen)
{
    char key[PL_PSEL_LEN + PL_PID_LEN + 2];
    size_t klen = key2(d->sel, id, key, sizeof(key));
    if (val == NULL)
        return exists(t, PL_T_PACK, key, klen);
    return pl_store_put(t, PL_T_PACK, key, klen, val, vlen);
}

static int ack_apply(pl_txn *t, const struct pl_pdev *d, struct pl_pmsg *m, enum pl_pdisp disp,
                     int64_t now)
{
    char val[PL_PID_LEN + 32];
    int rc = qrow_del(t, PL_T_PQ, d->sel, m->seq);
    if (rc == PL_OK && disp == PL_PDISP_MOVE) {
        snprintf(val, sizeof(val), "%s %" PRId64, m->id, now);
        rc = qrow_put(t, PL_T_PDONE, d->sel, m->seq, val);
        m->kept++;
    }
    snprintf(val, sizeof(val), "%" PRId64 " %c", now, disp == PL_PDISP_MOVE ? 'm' : 'd');
    if (rc == PL_OK)
        rc = receipt(t, d, m->id, val, strlen(val));
    if (rc != PL_OK)
        return rc;
    m->queued = m->queued ? m->queued - 1 : 0;
    return m->queued == 0 && m->kept == 0 ? msg_remove(t, m) : meta_put(t, m);
}

/* PL_OK: id is the device's and was sent to it (m is its record, locked
 * for update when upd); else what pl_pq_ack answers. */
static int ack_class(pl_txn *t, const struct pl_pdev *d, const char *id, struct pl_pmsg *m,
                     int upd)
{
    struct qrow r;
    int rc, had;
    memset(m, 0, sizeof(*m));
    if (!id_ok(id))
        return PL_PACK_UNKNOWN;
    rc = own_row_upd(t, d, id, m, &r, upd);
    if (rc == PL_OK && r.state == PL_PST_SENT)
        return PL_OK;
    if (rc == PL_OK)
        return PL_PACK_NOTSENT;
    if (rc < 0 || rc == PL_PACK_FOREIGN)
        return rc;
    /* no message (rc from the record) or no row for this device */
    if ((had = receipt(t, d, id, NULL, 0)) < 0)
        return had;
    if (had == PL_OK)
        return PL_PACK_DONE;
    return m->id[0] && strcmp(m->id, id) == 0 ? PL_PACK_NOTSENT : PL_PACK_UNKNOWN;
}

int pl_pq_ack_check(pl_txn *t, const struct pl_pdev *d, const char *id)
{
    struct pl_pmsg m;
    return ack_class(t, d, id, &m, 0);      /* read locks only: a check */
}

int pl_pq_ack(pl_txn *t, const struct pl_pdev *d, const char *id, enum pl_pdisp disp,
              int64_t now)
{
    struct pl_pmsg m;
    int rc = ack_class(t, d, id, &m, 1);
    return rc == PL_OK ? ack_apply(t, d, &m, disp, now) : rc;
}

/* ---- age purges ------------------------------------------------------- */

struct purge { pl_txn *t; const char *table; int64_t before; unsigned n; };

static int pack_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct purge *p = ctx;
    char *text = val_str(v, vl);
    long long when = strtoll(text, NULL, 10);
    free(text);
    if (when >= p->before)
        return 0;
    p->n++;
    return pl_store_del(p->t, PL_T_PACK, k, kl) == PL_OK ? 0 : PL_ERR;
}

int pl_pack_purge(pl_txn *t, int64_t before, unsigned *n)
{
    struct purge p = {t, PL_T_PACK, before, 0};
    int rc = pl_store_scan(t, PL_T_PACK, "", 0, pack_visit, &p);
    if (n)
        *n = p.n;
    return rc;
}

static int pdone_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct purge *p = ctx;
    char *text = val_str(v, vl);
    struct qrow r;
    int bad = qrow_parse(text, &r);
    free(text);
    if (bad || r.when >= p->before)
        return 0;
    if (pl_store_del(p->t, PL_T_PDONE, k, kl) != PL_OK || unref(p->t, r.id, 0, 1) != PL_OK)
        return PL_ERR;
    p->n++;
    return 0;
}

int pl_pmsg_purge_processed(pl_txn *t, int64_t before, unsigned *n)
{
    struct purge p = {t, PL_T_PDONE, before, 0};
    int rc = pl_store_scan(t, PL_T_PDONE, "", 0, pdone_visit, &p);
    if (n)
        *n = p.n;
    return rc;
}

/* ---- listing and retention ------------------------------------------- */

/* every message of a canonical user, in arrival order, with its record */
typedef int (*msg_fn)(void *ctx, const struct pl_pmsg *m);
struct mscan { pl_txn *t; msg_fn fn; void *ctx; };

static int mscan_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct mscan *s = ctx;
    struct pl_pmsg m;
    char id[PL_PID_LEN + 1];
    int rc;
    (void)k, (void)kl;
    if (vl != PL_PID_LEN)
        return 0;
    memcpy(id, v, PL_PID_LEN);
    id[PL_PID_LEN] = '\0';
    if ((rc = pl_pmsg_meta(s->t, id, &m, 0)) == PL_NOTFOUND)
        return 0;
    return rc != PL_OK ? rc : s->fn(s->ctx, &m);
}

static int user_msgs(pl_txn *t, const char *u, msg_fn fn, void *ctx)
{
    struct mscan s = {t, fn, ctx};
    char pre[PL_ADDR_SIZE + 1];
    size_t plen = key2(u, "", pre, sizeof(pre));
    return plen ? pl_store_scan(t, PL_T_PUSER, pre, plen, mscan_visit, &s) : PL_ERR;
}

static char dev_state(pl_txn *t, const struct pl_pdev *d, const struct pl_pmsg *m, int64_t *when)
{
    struct qrow r;
    char key[PL_PSEL_LEN + PL_PID_LEN + 2], *text;
    *when = 0;
    if (qrow_get(t, PL_T_PQ, d->sel, m->seq, &r, 0) == PL_OK ||
        qrow_get(t, PL_T_PDONE, d->sel, m->seq, &r, 0) == PL_OK) {
        *when = r.when;
        return r.state;
    }
    if (get_text(t, PL_T_PACK, key, key2(d->sel, m->id, key, sizeof(key)), &text, 0) != PL_OK)
        return PL_PST_NONE;
    *when = strtoll(text, NULL, 10);
    free(text);
    return PL_PST_ACKED;
}

struct lctx { pl_txn *t; struct devs *ds; pl_pmsg_list_fn fn; void *ctx; };

static int list_one(void *ctx, const struct pl_pmsg *m)
{
    struct lctx *l = ctx;
    struct pl_pdstate st[PL_PDEV_MAX + 1];
    for (size_t i = 0; i < l->ds->n; i++) {
        snprintf(st[i].name, sizeof(st[i].name), "%s", l->ds->d[i].name);
        st[i].state = dev_state(l->t, &l->ds->d[i], m, &st[i].when);
    }
    return l->fn(l->ctx, m, st, l->ds->n);
}

int pl_pmsg_list(pl_txn *t, const char *user, pl_pmsg_list_fn fn, void *ctx)
{
    char u[PL_ADDR_SIZE];
    struct lctx l = {t, NULL, fn, ctx};
    int rc;
    if (ukey(user, u, sizeof(u)) == 0)
        return PL_OK;
    l.ds = pl_xmalloc(sizeof(*l.ds));
    if ((rc = devs_of(t, u, l.ds)) == PL_OK)
        rc = user_msgs(t, u, list_one, &l);
    free(l.ds);
    return rc;
}

/* processed entries of one device */
struct pent { char id[PL_PID_LEN + 1]; const char *dev; int64_t when; };
struct pents { struct pent *e; size_t n, cap; const char *dev; };

static int pents_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct pents *p = ctx;
    char *text = val_str(v, vl);
    struct qrow r;
    int bad = qrow_parse(text, &r);
    (void)k, (void)kl;
    free(text);
    if (bad)
        return 0;
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->e = pl_xrealloc(p->e, p->cap * sizeof(*p->e));
    }
    memcpy(p->e[p->n].id, r.id, sizeof(r.id));
    p->e[p->n].dev = p->dev;
    p->e[p->n++].when = r.when;
    return 0;
}

static int processed_of(pl_txn *t, struct devs *ds, struct pents *p)
{
    int rc = PL_OK;
    for (size_t i = 0; rc == PL_OK && i < ds->n; i++) {
        char pre[PL_PSEL_LEN + 2];
        size_t plen = key2(ds->d[i].sel, "", pre, sizeof(pre));
        p->dev = ds->d[i].name;
        rc = pl_store_scan(t, PL_T_PDONE, pre, plen, pents_visit, p);
    }
    return rc;
}

static int pent_cmp(const void *a, const void *b)
{
    const struct pent *x = a, *y = b;
    return x->when < y->when ? -1 : x->when > y->when;
}

static int usage_one(void *ctx, const struct pl_pmsg *m)
{
    struct pl_push_usage *u = ctx;
    if (m->queued) {
        if (u->q_count++ == 0)
            u->q_oldest = m->arrived;
        u->q_bytes += m->size;
    } else if (m->kept) {
        u->p_bytes += m->size;
    }
    return 0;
}

int pl_push_usage(pl_txn *t, const char *user, struct pl_push_usage *u)
{
    char k[PL_ADDR_SIZE];
    struct devs *ds;
    struct pents p = {0};
    int rc;
    memset(u, 0, sizeof(*u));
    if (ukey(user, k, sizeof(k)) == 0)
        return PL_OK;
    if ((rc = user_msgs(t, k, usage_one, u)) != PL_OK)
        return rc;
    ds = pl_xmalloc(sizeof(*ds));
    if ((rc = devs_of(t, k, ds)) == PL_OK)
        rc = processed_of(t, ds, &p);
    for (size_t i = 0; i < p.n; i++)
        if (u->p_oldest == 0 || p.e[i].when < u->p_oldest)
            u->p_oldest = p.e[i].when;
    u->p_count = (unsigned)p.n;
    free(p.e);
    free(ds);
    return rc;
}

/* queued messages, oldest first, for the count/bytes/age rules */
struct qents { struct pl_pmsg *m; size_t n, cap; uint64_t bytes; };

static int qents_one(void *ctx, const struct pl_pmsg *m)
{
    struct qents *q = ctx;
    if (m->queued == 0)
        return 0;
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 16;
        q->m = pl_xrealloc(q->m, q->cap * sizeof(*q->m));
    }
    q->m[q->n++] = *m;
    q->bytes += m->size;
    return 0;
}

static int over_queue(const struct qents *q, const struct pl_push_limits *l, int64_t now,
                      pl_push_over_fn fn, void *ctx)
{
    size_t count = q->n;
    uint64_t bytes = q->bytes;
    for (size_t i = 0; i < q->n; i++) {
        int why = -1, rc;
        if (l->max_count && count > l->max_count)
            why = PL_OVER_COUNT;
        else if (l->max_bytes && bytes > l->max_bytes)
            why = PL_OVER_BYTES;
        else if (l->max_age && now - q->m[i].arrived > l->max_age)
            why = PL_OVER_AGE;
        if (why < 0)
            continue;
        if ((rc = fn(ctx, &q->m[i], "", q->m[i].arrived, (enum pl_push_over)why)) != 0)
            return rc;
        count--;
        bytes -= q->m[i].size;
    }
    return 0;
}

static int over_processed(pl_txn *t, struct pents *p, const struct pl_push_limits *l,
                          int64_t now, pl_push_over_fn fn, void *ctx)
{
    qsort(p->e, p->n, sizeof(*p->e), pent_cmp);
    for (size_t i = 0; i < p->n && now - p->e[i].when > l->processed_age; i++) {
        struct pl_pmsg m;
        int rc = pl_pmsg_meta(t, p->e[i].id, &m, 0);
        if (rc == PL_NOTFOUND)
            continue;
        if (rc != PL_OK || (rc = fn(ctx, &m, p->e[i].dev, p->e[i].when, PL_OVER_PROCESSED)) != 0)
            return rc;
    }
    return PL_OK;
}

int pl_push_over(pl_txn *t, const char *user, const struct pl_push_limits *l, int64_t now,
                 pl_push_over_fn fn, void *ctx)
{
    char u[PL_ADDR_SIZE];
    struct qents q = {0};
    struct pents p = {0};
    struct devs *ds;
    int rc;
    if (ukey(user, u, sizeof(u)) == 0)
        return PL_OK;
    if ((rc = user_msgs(t, u, qents_one, &q)) == PL_OK)
        rc = over_queue(&q, l, now, fn, ctx);
    free(q.m);
    if (rc != PL_OK || l->processed_age <= 0)
        return rc;
    ds = pl_xmalloc(sizeof(*ds));
    if ((rc = devs_of(t, u, ds)) == PL_OK && (rc = processed_of(t, ds, &p)) == PL_OK)
        rc = over_processed(t, &p, l, now, fn, ctx);
    free(p.e);
    free(ds);
    return rc;
}

/* ---- removing a device ------------------------------------------------ */

struct unrefctx { pl_txn *t; const char *table; int kept; };

static int unref_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct unrefctx *c = ctx;
    char *text = val_str(v, vl);
    struct qrow r;
    int bad = qrow_parse(text, &r);
    free(text);
    if (pl_store_del(c->t, c->table, k, kl) != PL_OK)
        return PL_ERR;
    if (bad)
        return 0;
    return unref(c->t, r.id, c->kept ? 0 : 1, c->kept ? 1 : 0) == PL_OK ? 0 : PL_ERR;
}

int pl_pdev_del(pl_txn *t, const char *user, const char *name)
{
    struct pl_pdev d;
    struct unrefctx q = {t, PL_T_PQ, 0}, k = {t, PL_T_PDONE, 1};
    char key[KEY_MAX], pre[PL_PSEL_LEN + 2];
    size_t plen, klen;
    int rc = pl_pdev_get(t, user, name, &d);
    if (rc != PL_OK)
        return rc;
    plen = key2(d.sel, "", pre, sizeof(pre));
    if ((rc = pl_store_scan(t, PL_T_PQ, pre, plen, unref_visit, &q)) != PL_OK ||
        (rc = pl_store_scan(t, PL_T_PDONE, pre, plen, unref_visit, &k)) != PL_OK ||
        (rc = pl_store_del_prefix(t, PL_T_PACK, pre, plen)) != PL_OK ||
        (rc = pl_psub_del(t, d.sel)) < 0)
        return rc;
    klen = key2(d.user, d.name, key, sizeof(key));
    if ((rc = pl_store_del(t, PL_T_PDEV, key, klen)) != PL_OK)
        return rc;
    return pl_store_del(t, PL_T_PDEVID, d.sel, PL_PSEL_LEN);
}
