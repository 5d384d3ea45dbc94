/* policy_request.c -- Postfix SMTPD policy protocol, server side
 * (policy_request.h). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy_request.h"

int pl_policy_parse(const char *text, size_t len, struct pl_policy_req *q, char *err, size_t errlen)
{
    char *p, *end, *nl, *eq;

    q->n = 0;
    if (len >= sizeof(q->text)) {
        snprintf(err, errlen, "request of %d bytes or more", PL_POLICY_MAX_REQUEST - 1);
        return -1;
    }
    memcpy(q->text, text, len);
    q->text[len] = '\0';
    if (memchr(q->text, '\0', len) != NULL) {
        snprintf(err, errlen, "NUL byte in request");
        return -1;
    }
    for (p = q->text, end = q->text + len; p < end; p = nl + 1) {
        if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
            nl = end;
        *nl = '\0';
        if (nl > p && nl[-1] == '\r')
            nl[-1] = '\0';
        if ((eq = strchr(p, '=')) == NULL || eq == p) {
            snprintf(err, errlen, "malformed attribute line \"%.40s\"", p);
            return -1;
        }
        if (q->n == PL_POLICY_MAX_ATTRS) {
            snprintf(err, errlen, "more than %d attributes", PL_POLICY_MAX_ATTRS);
            return -1;
        }
        *eq = '\0';
        q->name[q->n] = p;
        q->value[q->n++] = eq + 1;
    }
    return 0;
}

const char *pl_policy_get(const struct pl_policy_req *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->name[i], name) == 0)
            return q->value[i];
    return "";
}

/* The end of the first request in buf: index just past "\n\n" (or of the
 * lone "\n" of an empty request), or 0 when there is none yet. */
static size_t request_end(const char *buf, size_t len)
{
    if (len >= 1 && buf[0] == '\n')
        return 1;
    for (size_t i = 1; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\n')
            return i + 1;
    return 0;
}

int pl_policy_read(struct pl_policy_conn *c, struct pl_policy_req *q, unsigned idle_s,
                   volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    unsigned waited = 0;
    size_t end;
    ssize_t n;

    while ((end = request_end(c->buf, c->len)) == 0) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (c->len == sizeof(c->buf)) {
            snprintf(err, errlen, "request of %d bytes or more", PL_POLICY_MAX_REQUEST - 1);
            return -1;
        }
        if (stop && *stop)
            return 0;
        n = poll(&p, 1, 1000);
        if (n < 0 && errno == EINTR)          /* a signal: check stop, wait on */
            continue;
        if (n < 0) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (++waited >= idle_s) {
                snprintf(err, errlen, "idle for %u s", idle_s);
                return -1;
            }
            continue;
        }
        n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (c->len == 0)
                return 0;
            snprintf(err, errlen, "connection closed in the middle of a request");
            return -1;
        }
        c->len += (size_t)n;
        waited = 0;
    }
    /* the request's text without its final "\n\n" (or the lone "\n") */
    size_t tlen = end >= 2 ? end - 2 : 0;
    int rc = pl_policy_parse(c->buf, tlen, q, err, errlen);
    memmove(c->buf, c->buf + end, c->len - end);
    c->len -= end;
    return rc == 0 ? 1 : -1;
}

int pl_policy_reply(struct pl_policy_conn *c, const char *action)
{
    char out[1100];
    int n = snprintf(out, sizeof(out), "action=%s\n\n", action);
    size_t off = 0;

    if (n < 0 || (size_t)n >= sizeof(out))
        return -1;
    while (off < (size_t)n) {
        ssize_t w = write(c->fd, out + off, (size_t)n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}
