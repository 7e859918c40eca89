/* listen.c - sockets, CPU count and fd limit; see listen.h. */
#include "server/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* CPUs this process may use: its affinity mask, bounded by a cgroup v2
 * CPU quota (a container's --cpus), rounded up. */
unsigned tally_cpus_available(void)
{
    unsigned n = uv_available_parallelism();
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char quota[32];
        unsigned long long period;
        if (fscanf(f, "%31s %llu", quota, &period) == 2 && strcmp(quota, "max") != 0 &&
            period > 0) {
            unsigned long long q = strtoull(quota, NULL, 10);
            unsigned lim = (unsigned)((q + period - 1) / period);
            if (lim >= 1 && lim < n)
                n = lim;
        }
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r")) != NULL) {
        /* cgroup v1 */
        long long quota = -1, period = 0;
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
        if (f) {
            if (fscanf(f, "%lld", &period) != 1)
                period = 0;
            fclose(f);
        }
        if (quota > 0 && period > 0) {
            unsigned lim = (unsigned)((quota + period - 1) / period);
            if (lim >= 1 && lim < n)
                n = lim;
        }
    }
    return n ? n : 1;
}

/* Lets the process hold as many sockets as the hard limit allows. */
void tally_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* A bound, not yet listening socket with SO_REUSEPORT, so that every worker
 * has a listener of its own and the kernel spreads connections over them.
 * libuv 1.44 has no flag for it: create, set, bind, then uv_tcp_open(). */
int tally_bound_socket(const char *host, uint16_t port, bool reuseport)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
        len = sizeof(struct sockaddr_in);
    } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        len = sizeof(struct sockaddr_in6);
    } else {
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* TCP_NODELAY on the listener: Linux copies it to every accepted
     * socket, which saves a setsockopt() per connection. TCP_DEFER_ACCEPT
     * (1 s): the kernel hands a connection over when its first bytes have
     * arrived (or after about a second without), so the worker is woken
     * once, accepts and reads at once, instead of being woken for the
     * handshake and again for the request: about a fifth of the CPU time
     * of a connection that carries one request (bench/README.md). */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    /* An optimisation only: where it is refused, serve without it. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);
    return fd;
}

/* SO_REUSEPORT would let tallyd join another process already listening on
 * the port (of the same user) and share its connections, silently: with
 * the memory backend both would grant the same numbers. Bind once without
 * it first: the kernel refuses while anyone listens there. */
int tally_port_is_free(const char *host, uint16_t port)
{
    int fd = tally_bound_socket(host, port, false);
    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}
