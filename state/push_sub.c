/* push_sub.c -- state/push_sub.h: the psub table, one Web Push
 * subscription per push device, with its delivery failure count. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mirror.h"
#include "push.h"
#include "push_sub.h"

static int sel_ok(const char *sel)
{
    return sel != NULL && strlen(sel) == PL_PSEL_LEN &&
           strspn(sel, "0123456789abcdef") == PL_PSEL_LEN;
}

static int64_t field_i64(const char *text, const char *name)
{
    char v[32];
    pl_mstatus_field(text, name, v, sizeof(v));
    return strtoll(v, NULL, 10);
}

static int put(pl_txn *t, const char *sel, const struct pl_psub *s)
{
    char val[PL_WP_ENDPOINT_MAX + PL_WP_B64_POINT_LEN + PL_WP_B64_AUTH_LEN + 160];
    int n = snprintf(val, sizeof(val),
                     "endpoint=%s\np256dh=%s\nauth=%s\ncreated=%" PRId64 "\nfails=%u\nlast=%" PRId64
                     "\n",
                     s->sub.endpoint, s->sub.p256dh, s->sub.auth, s->created, s->fails, s->last);
    if (n < 0 || (size_t)n >= sizeof(val))
        return PL_ERR;
    return pl_store_put(t, PL_T_PSUB, sel, PL_PSEL_LEN, val, (size_t)n);
}

int pl_psub_set(pl_txn *t, const char *sel, const char *endpoint, const char *p256dh,
                const char *auth, int64_t now, const char **why)
{
    struct pl_psub s;
    const char *bad, *dummy;
    char *v = NULL;
    int rc;

    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (!sel_ok(sel)) {
        *why = "a device selector has 16 hex digits";
        return PL_ERR;
    }
    if ((bad = endpoint ? pl_webpush_endpoint_check(endpoint) : "no endpoint") != NULL ||
        (bad = p256dh ? pl_webpush_p256dh_check(p256dh) : "no p256dh") != NULL ||
        (bad = auth ? pl_webpush_auth_check(auth) : "no auth") != NULL) {
        *why = bad;
        return PL_ERR;
    }
    /* only for a device that exists (its row is locked against a removal) */
    if ((rc = pl_store_get(t, PL_T_PDEVID, sel, PL_PSEL_LEN, (void **)&v, NULL, 1)) != PL_OK)
        return rc;
    free(v);
    memset(&s, 0, sizeof(s));
    snprintf(s.sub.endpoint, sizeof(s.sub.endpoint), "%s", endpoint);
    /* the keys without padding (checked above: they decode) */
    if (pl_b64url_canon(p256dh, s.sub.p256dh, sizeof(s.sub.p256dh)) != PL_WP_B64_POINT_LEN ||
        pl_b64url_canon(auth, s.sub.auth, sizeof(s.sub.auth)) != PL_WP_B64_AUTH_LEN)
        return PL_ERR;
    s.created = now;
    return put(t, sel, &s);
}

int pl_psub_get(pl_txn *t, const char *sel, struct pl_psub *s, int for_update)
{
    char *text;
    int rc;

    memset(s, 0, sizeof(*s));
    if (!sel_ok(sel))
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_PSUB, sel, PL_PSEL_LEN, (void **)&text, NULL, for_update)) !=
        PL_OK)
        return rc;
    pl_mstatus_field(text, "endpoint", s->sub.endpoint, sizeof(s->sub.endpoint));
    pl_mstatus_field(text, "p256dh", s->sub.p256dh, sizeof(s->sub.p256dh));
    pl_mstatus_field(text, "auth", s->sub.auth, sizeof(s->sub.auth));
    s->created = field_i64(text, "created");
    s->fails = (unsigned)field_i64(text, "fails");
    s->last = field_i64(text, "last");
    free(text);
    return PL_OK;
}

int pl_psub_del(pl_txn *t, const char *sel)
{
    if (!sel_ok(sel))
        return PL_NOTFOUND;
    return pl_store_del(t, PL_T_PSUB, sel, PL_PSEL_LEN);
}

int pl_psub_note(pl_txn *t, const char *sel, int64_t now, int ok, unsigned *fails)
{
    struct pl_psub s;
    int rc = pl_psub_get(t, sel, &s, 1);

    if (rc != PL_OK)
        return rc;
    s.fails = ok ? 0 : s.fails + 1;
    s.last = now;
    if (fails)
        *fails = s.fails;
    return put(t, sel, &s);
}
