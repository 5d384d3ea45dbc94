/* fuzz_presence_answer.c -- libFuzzer target: the milter's side of the
 * presence lookup (state/presence_client.c).  A server thread on a unix
 * socket in a temporary directory answers every PRESENCE request with the
 * fuzz input; pl_presence_ask must come back with one of the four words
 * or an error, within its time budget. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "presence_client.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[128];
static int lfd = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *answer;                /* the harness's copy of the input */
static size_t answer_len;

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

/* Accepts one connection at a time: reads the request line, sends the
 * current answer, closes. */
static void *server(void *arg)
{
    (void)arg;
    for (;;) {
        char req[600];
        size_t got = 0;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            abort();
        }
        while (got < sizeof(req) && memchr(req, '\n', got) == NULL) {
            ssize_t n = read(fd, req + got, sizeof(req) - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        /* our own copy: the client may return (and libFuzzer free the
         * input) before a long answer is sent */
        pthread_mutex_lock(&lock);
        size_t n = answer_len;
        uint8_t *a = malloc(n ? n : 1);
        if (a == NULL)
            abort();
        memcpy(a, answer, n);
        pthread_mutex_unlock(&lock);
        if (n > 0 && send(fd, a, n, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
            perror("send");
        free(a);
        close(fd);
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    pthread_t th;
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof(dir), "/tmp/postlink-fuzz.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof(path), "%s/lookup", dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
        pthread_create(&th, NULL, server, NULL) != 0) {
        perror("presence server");
        abort();
    }
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const words[] = {"online", "away", "offline", "unknown"};
    char word[32];
    int ok = 0;

    pthread_mutex_lock(&lock);
    free(answer);
    answer = malloc(size ? size : 1);
    if (answer == NULL)
        abort();
    memcpy(answer, data, size);
    answer_len = size;
    pthread_mutex_unlock(&lock);
    if (pl_presence_ask(path, "alice@xmpp.example", 5000, word, sizeof(word)) == 0) {
        for (size_t i = 0; i < 4; i++)
            ok |= strcmp(word, words[i]) == 0;
        if (!ok)
            abort();                          /* an answer that is not a word */
    }
    if (strlen(word) >= sizeof(word))
        abort();
    return 0;
}
