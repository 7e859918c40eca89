/* listen.h - the process's sockets and limits, before any worker runs. */
#ifndef TALLY_LISTEN_H
#define TALLY_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

/* CPUs this process may use: its affinity mask, bounded by a cgroup (v2 or
 * v1) CPU quota (a container's --cpus), rounded up; at least 1. */
unsigned tally_cpus_available(void);

/* Lets the process hold as many sockets as the hard limit allows. */
void tally_raise_nofile(void);

/* A bound, not yet listening TCP socket on host (an IPv4 or IPv6 literal)
 * and port, with TCP_NODELAY (inherited by accepted sockets), TCP_DEFER_ACCEPT
 * where the kernel has it, and SO_REUSEPORT when reuseport. Returns the fd
 * or a negative errno. */
int tally_bound_socket(const char *host, uint16_t port, bool reuseport);

/* 0 when nobody listens on host:port, else a negative errno (-EADDRINUSE):
 * SO_REUSEPORT would otherwise let tallyd join another process listening
 * there (of the same user) and share its connections, silently. */
int tally_port_is_free(const char *host, uint16_t port);

#endif
