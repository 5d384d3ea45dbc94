/* policy_request.h -- the server side of Postfix's SMTPD access policy
 * delegation protocol (SMTPD_POLICY_README): a request is "name=value"
 * lines ended by an empty line; the reply is "action=..." and an empty
 * line, on the same connection, which Postfix keeps open and reuses. */
#ifndef PL_POLICY_REQUEST_H
#define PL_POLICY_REQUEST_H

#include <signal.h>
#include <stddef.h>

#define PL_POLICY_MAX_REQUEST 65536     /* bytes; Postfix's requests are ~1 KB */
#define PL_POLICY_MAX_ATTRS 128

struct pl_policy_req {
    char text[PL_POLICY_MAX_REQUEST];
    const char *name[PL_POLICY_MAX_ATTRS], *value[PL_POLICY_MAX_ATTRS];
    size_t n;
};

/* Bytes read from the connection but not yet parsed. */
struct pl_policy_conn {
    int fd;
    char buf[PL_POLICY_MAX_REQUEST];
    size_t len;
};

/* Parse one request's text (without the final empty line) into q.
 * 0, or -1 with the reason in err. */
int pl_policy_parse(const char *text, size_t len, struct pl_policy_req *q, char *err, size_t errlen);

/* Read the next request: 1 = one request in q; 0 = the peer closed the
 * connection between requests; -1 = error, oversize request, malformed
 * request or idle longer than idle_s seconds (reason in err).  stop is
 * polled every second: when it becomes nonzero, returns 0. */
int pl_policy_read(struct pl_policy_conn *c, struct pl_policy_req *q, unsigned idle_s,
                   volatile sig_atomic_t *stop, char *err, size_t errlen);

/* The value of an attribute, or "" when absent. */
const char *pl_policy_get(const struct pl_policy_req *q, const char *name);

/* Send "action=<action>\n\n"; 0 or -1. */
int pl_policy_reply(struct pl_policy_conn *c, const char *action);

#endif
