/* netmatch.h -- match a client address against a list of IPv4/IPv6
 * addresses and networks ("127.0.0.2", "192.0.2.0/24", "2001:db8::/32"),
 * as postlink.conf's sync_peers lists them. */
#ifndef PL_NETMATCH_H
#define PL_NETMATCH_H

#include <stddef.h>
#include <sys/socket.h>

struct pl_net { int family; unsigned char addr[16]; unsigned bits; };
struct pl_netlist { struct pl_net *v; size_t n; };

/* Parse one item ("addr" or "addr/len", len bytes); 0 or -1. */
int pl_net_parse(const char *item, size_t len, struct pl_net *n);
void pl_netlist_add(struct pl_netlist *l, const struct pl_net *n);
/* Parse a list value; returns 0 or -1 with the bad item named in err. */
int pl_netlist_parse(struct pl_netlist *l, const char *list, char *err, size_t errlen);
void pl_netlist_free(struct pl_netlist *l);
/* Nonzero if sa (AF_INET or AF_INET6; v4-mapped v6 counts as v4) matches. */
int pl_netlist_match(const struct pl_netlist *l, const struct sockaddr *sa);
/* Same for a textual address. */
int pl_netlist_match_text(const struct pl_netlist *l, const char *addr);

/* Split "IP:PORT" ("[IPv6]:PORT" too) into host (hlen bytes) and port:
 * 0; -1 when it is not of that form (port 1-65535); -2 when the host is
 * not a numeric address. */
int pl_hostport_split(const char *v, char *host, size_t hlen, unsigned *port);

#endif
