// errno after failing libc calls, strerror, perror (to stderr).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
    errno = 0;
    FILE *f = fopen("/nonexistent/devlink/file", "r");
    printf("fopen: %s errno=%s (%s)\n", f ? "ok" : "NULL", errno == ENOENT ? "ENOENT" : "?", strerror(errno));
    perror("perror says");

    errno = 0;
    long v = strtol("99999999999999999999999", NULL, 10);
    printf("strtol: %d errno=%s\n", v == LONG_MAX, errno == ERANGE ? "ERANGE" : "?");

    errno = 0;
    int fd = open("/", O_WRONLY);
    printf("open dir for writing: fd=%d errno=%s\n", fd, errno == EISDIR ? "EISDIR" : "?");

    errno = 0;
    ssize_t n = write(-1, "x", 1);
    printf("write(-1): %zd errno=%s\n", n, errno == EBADF ? "EBADF" : "?");

    errno = 0;
    void *p = malloc((size_t)-1 / 2);
    printf("huge malloc: %s errno=%s\n", p ? "ok" : "NULL", errno == ENOMEM ? "ENOMEM" : "?");
    free(p);

    errno = 12345;
    printf("errno is writable: %d\n", errno);
    printf("strerror(EINVAL)=%s\n", strerror(EINVAL));
    return 0;
}
