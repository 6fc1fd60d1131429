/* nl.h - the little rtnetlink the C baselines need: a link dump of the
 * current network namespace (or of another one, named by its nsid), read
 * through a callback; gets of links of other namespaces, sixteen to a send;
 * a namespace's nsid. Header-only so each baseline stays one gcc command.
 */
#ifndef BENCH_NL_H
#define BENCH_NL_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One link as a dump reports it; peer is IFLA_LINK (0 when the kernel leaves it out). */
struct nl_link {
	int index, peer;
	int peer_nsid; /* IFLA_LINK_NETNSID; -1 when absent (peer in the same netns) */
	char name[IF_NAMESIZE];
};

typedef void nl_link_fn(void *arg, const struct nl_link *l);

static inline int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0) {
		perror("socket(AF_NETLINK)");
		exit(2);
	}
	return fd;
}

/* Receives one datagram of replies into nl_buf, retrying on EINTR: its
 * length, or -errno. */
static char nl_buf[1 << 16] __attribute__((aligned(NLMSG_ALIGNTO)));

static inline ssize_t nl_recv(int fd)
{
	ssize_t len;

	while ((len = recv(fd, nl_buf, sizeof nl_buf, 0)) < 0)
		if (errno != EINTR)
			return -errno;
	return len;
}

/* NETNSA_NSID of an RTM_NEWNSID message; -1 when absent. */
static inline int nl_msg_nsid(const struct nlmsghdr *h)
{
	struct rtattr *a = (void *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct rtgenmsg)));
	int alen = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct rtgenmsg)));
	int id = -1;

	for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen))
		if (a->rta_type == NETNSA_NSID)
			memcpy(&id, RTA_DATA(a), sizeof id);
	return id;
}

/* Reads replies to the request just sent until its end; calls fn for each
 * RTM_NEWLINK and stores NETNSA_NSID of an RTM_NEWNSID in *nsid. Returns the
 * number of RTM_NEWLINK messages, or -errno. */
static inline int nl_read(int fd, nl_link_fn *fn, void *arg, int *nsid)
{
	int links = 0;

	for (;;) {
		ssize_t len = nl_recv(fd);

		if (len < 0)
			return len;
		for (struct nlmsghdr *h = (void *)nl_buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return links;
			if (h->nlmsg_type == NLMSG_ERROR) {
				int e = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
				return e ? e : links; /* an ack ends a non-dump request */
			}
			if (h->nlmsg_type == RTM_NEWNSID && nsid) {
				*nsid = nl_msg_nsid(h);
				return 0; /* not a dump: one reply */
			}
			if (h->nlmsg_type != RTM_NEWLINK)
				continue;
			links++;
			if (!fn)
				continue;
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			struct nl_link l = { .index = ifi->ifi_index, .peer_nsid = -1 };
			int alen = IFLA_PAYLOAD(h);

			for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
				if (a->rta_type == IFLA_IFNAME)
					snprintf(l.name, sizeof l.name, "%s", (char *)RTA_DATA(a));
				else if (a->rta_type == IFLA_LINK)
					memcpy(&l.peer, RTA_DATA(a), sizeof l.peer);
				else if (a->rta_type == IFLA_LINK_NETNSID)
					memcpy(&l.peer_nsid, RTA_DATA(a), sizeof l.peer_nsid);
			}
			fn(arg, &l);
		}
	}
}

/* Dumps the links of the current netns (target < 0) or of the netns with
 * nsid target, as seen from the current one. Returns the link count or -errno. */
static inline int nl_dump_links(int fd, int target, nl_link_fn *fn, void *arg)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
		struct rtattr a;
		int nsid;
	} req = {
		.h = { .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.ifi = { .ifi_family = AF_UNSPEC },
		.a = { .rta_len = RTA_LENGTH(sizeof(int)), .rta_type = IFLA_TARGET_NETNSID },
		.nsid = target,
	};

	req.h.nlmsg_len = target < 0 ? NLMSG_LENGTH(sizeof req.ifi) : sizeof req;
	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	return nl_read(fd, fn, arg, NULL);
}

/* Gets the links index[i] of the netns with nsid target[i], as seen from
 * the current one, for i < n: n requests in one send, one message back for
 * each, matched by sequence number (n at most 16, so that the answers fit
 * the receive buffer). Returns how many links came back, or -errno. */
static inline int nl_get_links(int fd, const int *target, const int *index, int n)
{
	struct req {
		struct nlmsghdr h;
		struct ifinfomsg ifi;
		struct rtattr a;
		int nsid;
	} req[16];
	static unsigned seq;
	unsigned first = seq + 1;
	int answers = 0, links = 0;

	if (n > 16)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		req[i] = (struct req){
			.h = { .nlmsg_len = sizeof req[i], .nlmsg_type = RTM_GETLINK,
			       .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = ++seq },
			.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index[i] },
			.a = { .rta_len = RTA_LENGTH(sizeof(int)), .rta_type = IFLA_TARGET_NETNSID },
			.nsid = target[i],
		};
	if (send(fd, req, n * sizeof req[0], 0) < 0)
		return -errno;
	while (answers < n) {
		ssize_t len = nl_recv(fd);

		if (len < 0)
			return len;
		for (struct nlmsghdr *h = (void *)nl_buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_seq - first >= (unsigned)n)
				continue; /* an answer to an earlier batch */
			answers++;
			links += h->nlmsg_type == RTM_NEWLINK;
		}
	}
	return links;
}

/* The nsid the current netns has for the netns open at nsfd; -1 when none
 * is assigned (the kernel assigns one when a link crosses the two). */
static inline int nl_nsid(int fd, int nsfd)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
		char pad[NLMSG_ALIGN(sizeof(struct rtgenmsg)) - sizeof(struct rtgenmsg)];
		struct rtattr a;
		int fd;
	} req = {
		.h = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_GETNSID, .nlmsg_flags = NLM_F_REQUEST },
		.g = { .rtgen_family = AF_UNSPEC },
		.a = { .rta_len = RTA_LENGTH(sizeof(int)), .rta_type = NETNSA_FD },
		.fd = nsfd,
	};
	int nsid = -1;

	if (send(fd, &req, sizeof req, 0) < 0 || nl_read(fd, NULL, NULL, &nsid) < 0)
		return -1;
	return nsid;
}

/* Counts the nsids the current netns has assigned that are below limit
 * (RTM_GETNSID dump), or -errno (-EINTR when the ids changed during the
 * dump: ask again). The kernel finds the id of a namespace by
 * walking these in order (__peernet2id), so this is how many it passes
 * before the current netns's own id, which every link message about a
 * container end (its peer is here) needs. */
static inline int nl_nsids_below(int fd, int limit)
{
	struct {
		struct nlmsghdr h;
		struct rtgenmsg g;
	} req = {
		.h = { .nlmsg_len = sizeof req, .nlmsg_type = RTM_GETNSID, .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.g = { .rtgen_family = AF_UNSPEC },
	};
	int below = 0, intr = 0;

	if (send(fd, &req, sizeof req, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t len = nl_recv(fd);

		if (len < 0)
			return len;
		for (struct nlmsghdr *h = (void *)nl_buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = 1;
			if (h->nlmsg_type == NLMSG_DONE) {
				int e = h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) ? *(int *)NLMSG_DATA(h) : 0;

				return e < 0 ? e : intr ? -EINTR : below;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == RTM_NEWNSID) {
				int id = nl_msg_nsid(h);

				below += id >= 0 && id < limit;
			}
		}
	}
}

#endif
