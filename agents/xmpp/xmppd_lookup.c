/* xmppd_lookup.c -- the milter's presence lookups on a unix socket: the
 * request is one line "PRESENCE <bare-jid>", the answer one line
 * "online", "away", "offline" or "unknown" (unknown also while
 * postlink-xmppd is not logged in, or for an account it does not watch).
 * One short-lived thread per connection; the milter gives up on its own
 * time budget, so a slow answer costs nobody more than that. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "presence_proto.h"
#include "privs.h"
#include "xmppd.h"

static int lfd = -1;
static pthread_t th;
static volatile int stopping;
static int running;
static char sock_path[512];

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

static void *accept_loop(void *arg)
{
    pthread_attr_t attr;
    (void)arg;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (!stopping) {
        struct pollfd p = {lfd, POLLIN, 0};
        pthread_t t;
        int fd;
        if (poll(&p, 1, 500) <= 0)
            continue;
        if ((fd = accept(lfd, NULL, NULL)) < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(100000);
            continue;
        }
        if (pthread_create(&t, &attr, serve_one, (void *)(intptr_t)fd) != 0)
            close(fd);
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

int lookup_listen(const char *path, const char *db_home)
{
    char err[512];
    if ((lfd = pl_listen_for_postfix(path, db_home, err, sizeof(err))) < 0) {
        msg_error("%s", err);
        return -1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s", path);
    return 0;
}

int lookup_run(void)
{
    if (pthread_create(&th, NULL, accept_loop, NULL) != 0) {
        msg_error("cannot start the lookup thread");
        return -1;
    }
    running = 1;
    return 0;
}

void lookup_stop(void)
{
    if (lfd < 0)
        return;
    stopping = 1;
    if (running)
        pthread_join(th, NULL);
    running = 0;
    close(lfd);
    unlink(sock_path);
    lfd = -1;
}
