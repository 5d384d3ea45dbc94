/* schema.c -- postlink's store schema, one step per version.  To change the
 * schema, append a step: never edit a released one.  Each table is a
 * B-tree of byte keys; what the keys and values mean is documented next to
 * the code that owns the table.
 *
 *   v1  meta   schema_version, created (unix time)
 *   v2  probe  health-check and test writes: key "<who>/<n>", value text
 *   v3  device a user's registered devices (state/device.c):
 *              key "<user>\n<device address>", value "<created> <name>"
 *   v4  msg uver chg ctlseen pending outbox: message state, per-user
 *              versions, change log, control dedupe, held controls and the
 *              outbox of copies (state/sync.c, state/outbox.c)
 *   v5  route  tokens by which the sync milter hands vetted controls to
 *              postlink-syncd (state/route.c)
 *   v6  peerq  queue ids of mail from sync peers trusted by their TLS
 *              client certificate, recorded by postlink-policyd for the
 *              sync milter (state/peerq.c)
 *   v7  mlink mjid mailid presence: messenger links, tagged mails and the
 *              presence cache (state/messenger.c)
 *   v8  rprefix rmap rkeyword rdecide rresult: IP phone routing tables,
 *              postlink-route's decisions and postlink-sipd's results
 *              (state/siproute.c)
 *   v9  maccount mid mstatus mreq mguard: POP3 mirror accounts, the ids of
 *              each primary's list, sync status and requests, and the
 *              hand-over guard (state/mirror.c)
 *   v10 pdev pdevid pseq pmsg pbody puser pref pq pdone pack: push delivery
 *              (capability 5): devices and their hashed tokens, messages
 *              and their bytes, each device's queue, processed store and
 *              acknowledgements (state/push.c)
 *   v11 psub   push delivery: each device's Web Push subscription
 *              (state/push_sub.c)
 *   v12 pin    push delivery: receipts of mail taken in, so that a delivery
 *              Postfix repeats is stored once (state/push_intake.c)
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "schema.h"

static const char *const v1_tables[] = {"meta", NULL};
static const char *const v2_tables[] = {"probe", NULL};
static const char *const v3_tables[] = {"device", NULL};
static const char *const v4_tables[] = {"msg", "uver", "chg", "ctlseen", "pending", "outbox", NULL};
static const char *const v5_tables[] = {"route", NULL};
static const char *const v6_tables[] = {"peerq", NULL};
static const char *const v7_tables[] = {"mlink", "mjid", "mailid", "presence", NULL};
static const char *const v8_tables[] = {"rprefix", "rmap", "rkeyword", "rdecide", "rresult", NULL};
static const char *const v9_tables[] = {"maccount", "mid", "mstatus", "mreq", "mguard", NULL};
static const char *const v10_tables[] = {"pdev", "pdevid", "pseq", "pmsg", "pbody",
                                         "puser", "pref", "pq", "pdone", "pack", NULL};
static const char *const v11_tables[] = {"psub", NULL};
static const char *const v12_tables[] = {"pin", NULL};

static int v1_migrate(pl_txn *t)
{
    char now[32];
    snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
    return pl_store_put(t, "meta", "created", 7, now, strlen(now));
}

const struct pl_schema_step pl_schema_steps[] = {
    {1, v1_tables, v1_migrate},
    {2, v2_tables, NULL},
    {3, v3_tables, NULL},
    {4, v4_tables, NULL},
    {5, v5_tables, NULL},
    {6, v6_tables, NULL},
    {7, v7_tables, NULL},
    {8, v8_tables, NULL},
    {9, v9_tables, NULL},
    {10, v10_tables, NULL},
    {11, v11_tables, NULL},
    {12, v12_tables, NULL},
};
const int pl_schema_nsteps = (int)(sizeof(pl_schema_steps) / sizeof(pl_schema_steps[0]));

size_t pl_schema_tables(int version, const char **out, size_t max)
{
    size_t n = 0;
    for (int i = 0; i < pl_schema_nsteps && pl_schema_steps[i].version <= version; i++)
        for (const char *const *t = pl_schema_steps[i].tables; *t; t++)
            if (n + 1 < max)
                out[n++] = *t;
    out[n] = NULL;
    return n;
}
