/* floor.c - what the exporter's job costs at the least on this host, in
 * four parts, each timed REPS times (median and min printed):
 *
 *   walk   readdir(/proc) and readlinkat(PID/ns/net) of every process,
 *          keeping the distinct network namespaces other than our own;
 *   dump   one RTM_GETLINK dump of the host's links on a new socket;
 *   aimed  one RTM_GETLINK dump aimed at each of those namespaces by nsid
 *          (IFLA_TARGET_NETNSID) over one socket, the nsids asked once
 *          before timing: the least that reads every container's links
 *          (and their counters) afresh. Namespaces without an nsid are
 *          left out and counted apart;
 *   gets   one RTM_GETLINK get aimed at each link of those namespaces
 *          whose peer or parent is in another netns (IFLA_LINK_NETNSID),
 *          sixteen to a send, the indexes found by one dump before
 *          timing: the same links' counters without each namespace's lo
 *          and closing NLMSG_DONE, as the exporter's cached scrape asks.
 *
 * Then the id this netns gives itself and how many of its ids are below
 * that one (selfid, ids_below_self): the kernel walks that many to fill in
 * IFLA_LINK_NETNSID of every container end it reports (see nl_nsids_below).
 *
 *   floor [-r REPS]
 * Prints one line of key=value pairs. Build: gcc -O2 -Wall -o floor floor.c
 */
#include "nl.h"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>

#define MAXNS (1 << 16) /* distinct namespaces kept; open addressing below */

static unsigned long ns_ino[MAXNS], slot[2 * MAXNS];
static int ns_pid[MAXNS], n_ns, n_procs;

#define MAXGETS (4 * MAXNS)
static int get_nsid[MAXGETS], get_index[MAXGETS], n_gets, cur_nsid;

static void add_get(void *arg, const struct nl_link *l)
{
	(void)arg;
	if (l->peer_nsid >= 0 && l->peer > 0 && n_gets < MAXGETS) { /* as the exporter's crosses() */
		get_nsid[n_gets] = cur_nsid;
		get_index[n_gets++] = l->index;
	}
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static unsigned long netns_of(int dirfd, const char *rel)
{
	char link[64];
	ssize_t n = readlinkat(dirfd, rel, link, sizeof link - 1);
	unsigned long ino = 0;

	if (n > 0) { /* gone processes and unreadable kernel threads give 0 */
		link[n] = '\0';
		sscanf(link, "net:[%lu]", &ino);
	}
	return ino;
}

static void walk(unsigned long self)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char rel[300];

	if (!d) {
		perror("opendir /proc");
		exit(2);
	}
	memset(slot, 0, sizeof slot);
	n_ns = n_procs = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		n_procs++;
		snprintf(rel, sizeof rel, "%s/ns/net", e->d_name);
		unsigned long ino = netns_of(dirfd(d), rel);

		if (ino == 0 || ino == self)
			continue;
		size_t h = (ino * 11400714819323198485ull) % (2 * MAXNS);
		while (slot[h] && slot[h] != ino)
			h = (h + 1) % (2 * MAXNS);
		if (slot[h] || n_ns == MAXNS)
			continue;
		slot[h] = ino;
		ns_ino[n_ns] = ino;
		ns_pid[n_ns++] = atoi(e->d_name);
	}
	closedir(d);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts t in place; prints NAME_us=median NAME_min_us=min. */
static void report(const char *name, double *t, int reps)
{
	qsort(t, reps, sizeof *t, by_value);
	printf(" %s_us=%.0f %s_min_us=%.0f", name, t[reps / 2], name, t[0]);
}

int main(int argc, char **argv)
{
	int reps = 20, opt, links = 0, aimed_links = 0, n_aimed = 0;
	static int nsid[MAXNS];
	double *t, t0;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r' || (reps = atoi(optarg)) < 1) {
			fprintf(stderr, "usage: %s [-r REPS]\n", argv[0]);
			return 2;
		}
	}
	t = calloc(reps, sizeof *t);
	unsigned long self = netns_of(AT_FDCWD, "/proc/self/ns/net");

	for (int i = 0; i < reps; i++) {
		t0 = now_us();
		walk(self);
		t[i] = now_us() - t0;
	}
	printf("netns=%d procs=%d", n_ns, n_procs);
	report("walk", t, reps);

	for (int i = 0; i < reps; i++) {
		t0 = now_us();
		int fd = nl_open();

		links = nl_dump_links(fd, -1, NULL, NULL);
		close(fd);
		t[i] = now_us() - t0;
	}
	printf(" links=%d", links);
	report("dump", t, reps);

	int fd = nl_open();

	for (int i = 0; i < n_ns; i++) {
		char path[64];

		snprintf(path, sizeof path, "/proc/%d/ns/net", ns_pid[i]);
		int nsfd = open(path, O_RDONLY | O_CLOEXEC);

		nsid[i] = nsfd < 0 ? -1 : nl_nsid(fd, nsfd);
		n_aimed += nsid[i] >= 0;
		if (nsfd >= 0)
			close(nsfd);
	}
	for (int i = 0; i < reps; i++) {
		t0 = now_us();
		aimed_links = 0;
		for (int j = 0; j < n_ns; j++) {
			int n = nsid[j] < 0 ? 0 : nl_dump_links(fd, nsid[j], NULL, NULL);

			aimed_links += n > 0 ? n : 0;
		}
		t[i] = now_us() - t0;
	}
	printf(" aimed_netns=%d aimed_links=%d", n_aimed, aimed_links);
	report("aimed", t, reps);

	for (int j = 0; j < n_ns; j++) {
		cur_nsid = nsid[j];
		if (nsid[j] >= 0)
			nl_dump_links(fd, nsid[j], add_get, NULL);
	}
	int got = 0;

	for (int i = 0; i < reps; i++) {
		t0 = now_us();
		got = 0;
		for (int j = 0; j < n_gets; j += 16) {
			int k = n_gets - j < 16 ? n_gets - j : 16;
			int n = nl_get_links(fd, get_nsid + j, get_index + j, k);

			got += n > 0 ? n : 0;
		}
		t[i] = now_us() - t0;
	}
	printf(" gets=%d got=%d", n_gets, got);
	report("gets", t, reps);
	/* The id this netns gives itself (assigned by the first aimed request
	 * that reported a container end) and how many ids the kernel walks
	 * past to find it, for each container end it reports. */
	int selffd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int selfid = selffd < 0 ? -1 : nl_nsid(fd, selffd);
	int below = 0;

	if (selffd >= 0)
		close(selffd);
	for (int try = 0; selfid >= 0 && try < 10; try++)
		if ((below = nl_nsids_below(fd, selfid)) != -EINTR)
			break;
	printf(" selfid=%d ids_below_self=%d", selfid, below);
	printf(" reps=%d\n", reps);
	return 0;
}
