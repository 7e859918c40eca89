/*
 * tally-healthcheck: GET a path from tallyd on this host and exit 0 if the
 * answer is 200, 1 otherwise. It exists for `podman play kube`, which turns a
 * livenessProbe into a command run inside the container (an httpGet probe
 * becomes `curl -f ...` through /bin/sh, neither of which the FROM-scratch
 * tally image has). Kubernetes probes over HTTP itself and does not need it.
 *
 *   tally-healthcheck [PORT [PATH [HOST]]]
 *
 * PORT defaults to $TALLY_PORT, then $PORT, then 8080; PATH to /healthz;
 * HOST (an IPv4 or IPv6 address) to 127.0.0.1. Connect, send and receive
 * each time out after 2 s. Needs only libc.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *first_set(const char *a, const char *b, const char *fallback)
{
    if (a && *a)
        return a;
    if (b && *b)
        return b;
    return fallback;
}

static int fail(const char *what)
{
    fprintf(stderr, "tally-healthcheck: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    const char *port_s =
        argc > 1 ? argv[1] : first_set(getenv("TALLY_PORT"), getenv("PORT"), "8080");
    const char *path = argc > 2 ? argv[2] : "/healthz";
    const char *host = argc > 3 ? argv[3] : "127.0.0.1";

    char *end;
    long port = strtol(port_s, &end, 10);
    if (*port_s == '\0' || *end != '\0' || port < 1 || port > 65535)
        return fail("bad port");
    if (path[0] != '/' || strpbrk(path, " \r\n") != NULL || strlen(path) > 1024)
        return fail("bad path");

    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        sslen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        sslen = sizeof *v6;
    } else {
        return fail("bad host address");
    }

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(strerror(errno));
    /* On Linux SO_SNDTIMEO also bounds connect(). */
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, sslen) != 0)
        return fail(strerror(errno));

    char req[1200];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: tally-healthcheck\r\n\r\n",
                     path, host);
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0)
            return fail(w < 0 ? strerror(errno) : "send failed");
        off += (int)w;
    }

    /* The status line is all we need: "HTTP/1.x 200 ...". */
    char resp[64];
    size_t got = 0;
    while (got < 12) {
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r < 0)
            return fail(strerror(errno));
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    if (got >= 12 && strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 8, " 200", 4) == 0)
        return 0;
    char *eol = strpbrk(resp, "\r\n");
    if (eol)
        *eol = '\0';
    fprintf(stderr, "tally-healthcheck: %s:%ld%s answered '%s'\n", host, port, path, resp);
    return 1;
}
