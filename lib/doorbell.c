/* doorbell.c -- wake-ups between postlink processes over a unix datagram
 * socket in db_home (doorbell.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "doorbell.h"

static int bell_addr(const char *dir, const char *name, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s.bell", dir, name);
    return n > 0 && (size_t)n < sizeof(sa->sun_path) ? 0 : -1;
}

int pl_doorbell_open(const char *dir, const char *name, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    int fd;

    if (bell_addr(dir, name, &sa) != 0) {
        snprintf(err, errlen, "%s/%s.bell: path too long for a unix socket", dir, name);
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    (void)unlink(sa.sun_path);          /* left by a process that was killed */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "bind %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int pl_doorbell_wait(int fd, unsigned ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b[16];
    int rung = 0;

    if (poll(&p, 1, (int)ms) > 0 && (p.revents & POLLIN))
        rung = 1;
    while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
        rung = 1;
    return rung;
}

int pl_doorbell_ring(const char *dir, const char *name)
{
    struct sockaddr_un sa;
    int fd, rc;

    if (bell_addr(dir, name, &sa) != 0)
        return -1;
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    rc = sendto(fd, "!", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof(sa)) == 1
             ? 0 : -1;
    close(fd);
    return rc;
}

void pl_doorbell_close(int fd, const char *dir, const char *name)
{
    struct sockaddr_un sa;
    if (fd < 0)
        return;
    close(fd);
    if (bell_addr(dir, name, &sa) == 0)
        (void)unlink(sa.sun_path);
}
