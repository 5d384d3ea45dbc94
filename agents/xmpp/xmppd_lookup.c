/* xmppd_lookup.c -- the milter's presence lookups on a unix socket: the
 * request is one line "PRESENCE <bare-jid>", the answer one line
 * "online", "away", "offline" or "unknown" (unknown also while
 * postlink-xmppd is not logged in, or for an account it does not watch).
 * The server's listener (server/listener.h) gives each connection a
 * thread; the milter gives up on its own time budget, so a slow answer
 * costs nobody more than that. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "presence_proto.h"
#include "server.h"
#include "xmppd.h"

#define MAX_CONNS 200          /* one per milter thread asking at once */

static pl_listener *listener;

static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[512], out[32], jid[PL_JID_MAX];
    size_t len = 0;

    while (len < sizeof(buf) - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&p, 1, 1000) <= 0)
            break;
        if ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        if (strchr(buf, '\n'))
            break;
    }
    if (pl_presence_parse_request(buf, len, jid, sizeof(jid)) == 0 && pl_jid_check(jid) == NULL)
        snprintf(out, sizeof(out), "%s\n", pl_presence_name(roster_presence(jid)));
    else
        snprintf(out, sizeof(out), "error\n");
    if (write(fd, out, strlen(out)) < 0 && errno != EPIPE)
        msg_warn("lookup: cannot answer: %s", strerror(errno));
    close(fd);
    return NULL;
}

static void serve_conn(int fd, void *ctx)
{
    (void)ctx;
    (void)serve_one((void *)(intptr_t)fd);
}

int lookup_listen(const char *path, const char *user)
{
    char err[512];
    if ((listener = pl_listener_open(path, user, err, sizeof(err))) == NULL) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_adopt(listener);
    return 0;
}

int lookup_run(void)
{
    return pl_listener_start(listener, "postlink-xmppd lookups", MAX_CONNS, serve_conn, NULL);
}
