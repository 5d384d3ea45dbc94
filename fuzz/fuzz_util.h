/* fuzz_util.h -- what the libFuzzer targets share: a peer on the other end
 * of a socketpair that sends the fuzz input and swallows every reply, so a
 * server function under test reads real bytes from a real socket. */
#ifndef PL_FUZZ_UTIL_H
#define PL_FUZZ_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct fuzz_peer {
    pthread_t th;
    int fd;                  /* the peer's end */
    const uint8_t *data;
    size_t size;
};

/* Start the peer: it writes data[0..size), shuts its sending side down
 * (the server sees EOF after the input) and reads until the server closes
 * its end.  Returns the server's end of the socketpair (aborts on error). */
int fuzz_peer_start(struct fuzz_peer *p, const uint8_t *data, size_t size);
/* Wait for the peer (after the server closed its fd) and close its end. */
void fuzz_peer_finish(struct fuzz_peer *p);

/* A NUL-terminated heap copy of data (free it). */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
