/* address.h -- mail addresses as postlink keys them: syntax check and the
 * canonical (lower-case) form used for users and devices. */
#ifndef PL_ADDRESS_H
#define PL_ADDRESS_H

#include <stddef.h>

/* RFC 5321 4.5.3.1: a local part has at most 64 octets, a domain at most
 * 255, a path ("<" address ">") at most 256, so an address at most 254.
 * Every buffer that holds an address is PL_ADDR_SIZE bytes; an address
 * that does not fit is refused, never cut. */
#define PL_ADDR_LOCAL_MAX 64
#define PL_ADDR_DOMAIN_MAX 255
#define PL_ADDR_MAX 254
#define PL_ADDR_SIZE (PL_ADDR_MAX + 1)
#define PL_ADDR_MAX_S "254"          /* for scanf widths: keep equal to PL_ADDR_MAX */

/* NULL if addr is a usable local@domain address, else why not. */
const char *pl_addr_check(const char *addr);
/* Lower-case copy of addr into out: 0, or -1 (out = "") when addr does
 * not fit into outlen bytes. */
int pl_addr_canon(const char *addr, char *out, size_t outlen);
/* The address of a MAIL FROM / RCPT TO argument as postlink keys it:
 * without spaces and <>, without the trailing dots Postfix drops, lower
 * case.  0, or -1 (out = "") when it is longer than PL_ADDR_MAX or does
 * not fit into outlen bytes: the caller refuses it (501 5.1.3). */
int pl_addr_from_smtp(const char *arg, char *out, size_t outlen);
/* The domain part (after the last '@'), or "" if none. */
const char *pl_addr_domain(const char *addr);

#endif
