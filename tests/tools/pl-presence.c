/* pl-presence.c -- ask postlink-xmppd for a JID's presence the way the
 * postlink-tag milter does (lib/presence_client.c), for the tests:
 *   pl-presence SOCKET JID [BUDGET-MS]
 * prints the answer, or "unknown (<reason>)" with exit status 2, and the
 * time taken in milliseconds on stderr. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "presence_client.h"

int main(int argc, char **argv)
{
    char word[128];
    struct timespec a, b;
    int rc;

    if (argc < 3) {
        fprintf(stderr, "usage: pl-presence SOCKET JID [BUDGET-MS]\n");
        return 64;
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    rc = pl_presence_ask(argv[1], argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 200, word, sizeof(word));
    clock_gettime(CLOCK_MONOTONIC, &b);
    fprintf(stderr, "%ld ms\n", (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
    if (rc != 0) {
        printf("unknown (%s)\n", word);
        return 2;
    }
    printf("%s\n", word);
    return 0;
}
