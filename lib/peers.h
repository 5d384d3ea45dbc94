/* peers.h -- postlink.conf's sync_peers: the servers trusted to send
 * control messages for any enabled user, named by client IP address or
 * network, or by TLS client certificate fingerprint as Postfix computes it
 * (smtpd_tls_fingerprint_digest; certificate or public-key fingerprint,
 * "AB:CD:..." in any case, colons optional). */
#ifndef PL_PEERS_H
#define PL_PEERS_H

#include <stddef.h>

#include "netmatch.h"

/* "AB:CD:..." for up to 64 bytes (SHA-512), NUL included. */
#define PL_FPRINT_MAX (64 * 3)

struct pl_peers {
    struct pl_netlist nets;
    char (*fp)[PL_FPRINT_MAX];
    size_t nfp;
};

/* Parse a sync_peers value; 0, or -1 with the bad item named in err. */
int pl_peers_parse(struct pl_peers *p, const char *list, char *err, size_t errlen);
void pl_peers_free(struct pl_peers *p);

/* Normalise a fingerprint (16, 20, 32, 48 or 64 bytes of hex, colons
 * between every byte or none) to upper case with colons; 0 or -1. */
int pl_fprint_norm(const char *in, size_t len, char *out, size_t outlen);

/* Nonzero if the fingerprint (as Postfix sends it) is listed. */
int pl_peers_match_fprint(const struct pl_peers *p, const char *fprint);

#endif
