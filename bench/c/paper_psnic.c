/* paper_psnic.c - the method of the paper's psnic tool (T. Amano and
 * T. Hirotsu, "Design and Implementation of Configuration Information
 * Analysis Tool for Monitoring Microservices", Hosei University), rebuilt in C
 * from its description as the baseline bench/run.sh measures psnic against.
 * It is not part of the product.
 *
 *   paper_psnic PID
 *     1. dumps the host's links (RTM_GETLINK) and keeps index -> name;
 *     2. enters PID's network namespace (setns on /proc/PID/ns/net);
 *     3. executes itself again, with the host's table as arguments;
 *     4. the new image dumps the namespace's links and prints the host name
 *        whose index is each link's peer index (IFLA_LINK, iproute2's "@ifN").
 *
 * As in the paper, the peer index alone decides: nothing checks that the peer
 * lives in the host namespace, so an index that happens to exist on the host
 * (a veth between two containers, a macvlan's parent) gives a wrong name.
 *
 * Exit status: 0 a name printed, 1 none, 2 usage or system error.
 * Build: gcc -O2 -Wall -o paper_psnic paper_psnic.c
 */
#include "nl.h"

#include <fcntl.h>
#include <sched.h>

#define INSIDE "--inside" /* marks the re-executed half */

struct argv_buf {
	char **v;
	size_t n, cap;
};

static void push(struct argv_buf *b, char *s)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->v = realloc(b->v, b->cap * sizeof *b->v);
		if (!b->v) {
			perror("realloc");
			exit(2);
		}
	}
	b->v[b->n++] = s;
}

/* Host half: every host link becomes an "INDEX:NAME" argument. */
static void host_link(void *arg, const struct nl_link *l)
{
	char *s;

	if (asprintf(&s, "%d:%s", l->index, l->name) < 0) {
		perror("asprintf");
		exit(2);
	}
	push(arg, s);
}

struct inside {
	int argc;
	char **argv;
	int printed;
};

/* Namespace half: print the host name whose index is this link's peer. */
static void ns_link(void *arg, const struct nl_link *l)
{
	struct inside *in = arg;

	if (l->peer == 0)
		return;
	for (int i = 0; i < in->argc; i++) {
		char *end;
		long idx = strtol(in->argv[i], &end, 10);

		if (*end == ':' && idx == l->peer) {
			puts(end + 1);
			in->printed++;
			return;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], INSIDE) == 0) {
		struct inside in = { argc - 2, argv + 2, 0 };
		int fd = nl_open();

		if (nl_dump_links(fd, -1, ns_link, &in) < 0) {
			perror("RTM_GETLINK in the namespace");
			return 2;
		}
		return in.printed ? 0 : 1;
	}
	if (argc != 2 || argv[1][0] == '\0' || argv[1][strspn(argv[1], "0123456789")] != '\0') {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}

	struct argv_buf next = { 0 };
	char path[64];
	int fd = nl_open(), nsfd;

	push(&next, argv[0]);
	push(&next, INSIDE);
	if (nl_dump_links(fd, -1, host_link, &next) < 0) {
		perror("RTM_GETLINK on the host");
		return 2;
	}
	close(fd);
	snprintf(path, sizeof path, "/proc/%s/ns/net", argv[1]);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
		perror(path);
		return 2;
	}
	push(&next, NULL);
	execv("/proc/self/exe", next.v);
	perror("execv /proc/self/exe");
	return 2;
}
