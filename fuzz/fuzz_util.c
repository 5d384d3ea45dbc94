/* fuzz_util.c -- the socketpair peer and helpers of fuzz_util.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"

static void *peer_main(void *arg)
{
    struct fuzz_peer *p = arg;
    size_t off = 0;
    int sending = 1;
    char sink[16384];

    for (;;) {
        struct pollfd pfd = {p->fd, (short)(POLLIN | (sending ? POLLOUT : 0)), 0};
        if (sending && off == p->size) {
            shutdown(p->fd, SHUT_WR);
            sending = 0;
            continue;
        }
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(p->fd, sink, sizeof(sink));
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;                       /* the server closed its end */
        }
        if (sending && (pfd.revents & POLLOUT)) {
            ssize_t n = send(p->fd, p->data + off, p->size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                sending = 0;                 /* the server stopped reading */
        }
    }
    return NULL;
}

int fuzz_peer_start(struct fuzz_peer *p, const uint8_t *data, size_t size)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("socketpair");
        abort();
    }
    p->fd = sv[1];
    p->data = data;
    p->size = size;
    if (fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK) != 0 ||
        pthread_create(&p->th, NULL, peer_main, p) != 0) {
        perror("fuzz peer");
        abort();
    }
    return sv[0];
}

void fuzz_peer_finish(struct fuzz_peer *p)
{
    pthread_join(p->th, NULL);
    close(p->fd);
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
