/* A loopback line server: connect with `nc 127.0.0.1 7878`, type lines, and edit
 * handler.c while the connection stays open: the next line gets the new answer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

size_t handle_line(const char *line, char *reply, size_t cap);   /* handler.c */

long lines_served;                 /* kept across patches */

#define MAX_CLIENTS 64

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7878;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 16)) {
        perror("server: bind/listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    struct pollfd fds[MAX_CLIENTS + 1] = { { .fd = lfd, .events = POLLIN } };
    char bufs[MAX_CLIENTS + 1][1024];
    size_t used[MAX_CLIENTS + 1] = { 0 };
    int n = 1;
    for (;;) {
        if (poll(fds, n, -1) < 0)
            continue;
        if ((fds[0].revents & POLLIN) && n <= MAX_CLIENTS) {
            int c = accept(lfd, NULL, NULL);
            if (c >= 0) {
                fds[n] = (struct pollfd){ .fd = c, .events = POLLIN };
                used[n++] = 0;
            }
        }
        for (int i = 1; i < n; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t r = read(fds[i].fd, bufs[i] + used[i], sizeof bufs[i] - 1 - used[i]);
            if (r <= 0) {
                close(fds[i].fd);
                fds[i] = fds[n - 1];
                memcpy(bufs[i], bufs[n - 1], used[n - 1]);
                used[i] = used[n - 1];
                n--, i--;
                continue;
            }
            used[i] += r;
            char *nl;
            while ((nl = memchr(bufs[i], '\n', used[i]))) {
                *nl = 0;
                char reply[1024];
                size_t len = handle_line(bufs[i], reply, sizeof reply);
                lines_served++;
                if (write(fds[i].fd, reply, len) < 0)
                    break;
                size_t rest = used[i] - (nl + 1 - bufs[i]);
                memmove(bufs[i], nl + 1, rest);
                used[i] = rest;
            }
        }
    }
}
