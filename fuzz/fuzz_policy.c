/* fuzz_policy.c -- libFuzzer target: the Postfix SMTPD policy protocol as
 * postlink-policyd reads it (policy/policy_request.c).  The input is what
 * Postfix would send on one connection, read with pl_policy_read through a
 * real socketpair, request after request, each answered; and the same
 * bytes parsed as one request's text by pl_policy_parse.  The attributes
 * postlink-policyd decides by go through the sync_peers matching it uses
 * (lib/peers.c fingerprints, lib/netmatch.c client addresses). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "peers.h"
#include "policy_request.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pl_peers peers;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc;
    (void)argv;
    if (pl_peers_parse(&peers, "127.0.0.2, 192.0.2.0/24 2001:db8::/32 ::1 "
                       "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF "
                       "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
                       err, sizeof(err)) != 0)
        abort();
    return 0;
}

static const char *const names[] = {
    "request", "protocol_state", "sender", "recipient", "client_address",
    "ccert_fingerprint", "ccert_pubkey_fingerprint", "sasl_username", "queue_id", "",
};

static volatile size_t sum;

static void use(const struct pl_policy_req *q)
{
    if (q->n > PL_POLICY_MAX_ATTRS)
        abort();
    for (size_t i = 0; i < q->n; i++) {
        if (q->name[i][0] == '\0' || strchr(q->name[i], '=') != NULL)
            abort();                          /* a name is never empty, holds no '=' */
        sum += strlen(q->value[i]);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        sum += strlen(pl_policy_get(q, names[i]));
    sum += (size_t)pl_peers_match_fprint(&peers, pl_policy_get(q, "ccert_fingerprint"));
    sum += (size_t)pl_peers_match_fprint(&peers, pl_policy_get(q, "ccert_pubkey_fingerprint"));
    sum += (size_t)pl_netlist_match_text(&peers.nets, pl_policy_get(q, "client_address"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pl_policy_conn c;
    static struct pl_policy_req q;
    volatile sig_atomic_t stop = 0;
    struct fuzz_peer p;
    char err[256];
    int rc;

    if (pl_policy_parse((const char *)data, size, &q, err, sizeof(err)) == 0)
        use(&q);

    memset(&c, 0, sizeof(c));
    c.fd = fuzz_peer_start(&p, data, size);
    while ((rc = pl_policy_read(&c, &q, 5, &stop, err, sizeof(err))) == 1) {
        use(&q);
        if (c.len > sizeof(c.buf))
            abort();
        if (pl_policy_reply(&c, pl_policy_get(&q, "sender")[0] ? "DUNNO" : "REJECT no sender") != 0)
            break;
    }
    close(c.fd);
    fuzz_peer_finish(&p);
    return 0;
}
