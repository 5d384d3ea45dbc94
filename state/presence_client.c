/* presence_client.c -- presence lookups with a time budget
 * (presence_client.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "presence_client.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(int fd, char *word, size_t len, const char *why)
{
    if (fd >= 0)
        close(fd);
    snprintf(word, len, "%s", why);
    return -1;
}

/* Wait for events on fd until the deadline; 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd p = {fd, events, 0};
        int n;
        if (left <= 0)
            return 0;
        n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n > 0;
    }
}

int pl_presence_ask(const char *sock_path, const char *jid, unsigned budget_ms,
                    char *word, size_t len)
{
    int64_t deadline = now_ms() + budget_ms;
    struct sockaddr_un sa;
    char req[512], buf[64];
    size_t got = 0, off = 0;
    int fd, n;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof(sa.sun_path))
        return fail(-1, word, len, "socket path too long");
    strcpy(sa.sun_path, sock_path);
    n = snprintf(req, sizeof(req), "PRESENCE %s\n", jid);
    if (n < 0 || (size_t)n >= sizeof(req) || strpbrk(jid, "\r\n"))
        return fail(-1, word, len, "bad JID");
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return fail(-1, word, len, strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS &&
        errno != EAGAIN)
        return fail(fd, word, len, strerror(errno));
    while (off < (size_t)n) {
        ssize_t w;
        if (wait_fd(fd, POLLOUT, deadline) <= 0)
            return fail(fd, word, len, "timeout");
        w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0)
            return fail(fd, word, len, strerror(errno));
        off += (size_t)w;
    }
    while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
        ssize_t r;
        if (wait_fd(fd, POLLIN, deadline) <= 0)
            return fail(fd, word, len, "timeout");
        r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return fail(fd, word, len, r == 0 ? "closed" : strerror(errno));
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (!(strcmp(buf, "online") == 0 || strcmp(buf, "away") == 0 || strcmp(buf, "offline") == 0 ||
          strcmp(buf, "unknown") == 0))
        return fail(-1, word, len, "unexpected answer");
    snprintf(word, len, "%s", buf);
    return 0;
}
