/* timeit.c - whole-command wall time: runs CMD K times, one after the other,
 * each started with posix_spawn (no shell) with stdout on /dev/null, and
 * prints the median, min and mean microseconds per run on stdout:
 *
 *   timeit K CMD [ARG...]
 *   -> median_us=1234 min_us=1100 mean_us=1300 runs=K failed=0
 *
 * Exit status 1 when a run exited non-zero (the numbers are still printed).
 * Build: gcc -O2 -Wall -o timeit timeit.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int k = argc >= 3 ? atoi(argv[1]) : 0, failed = 0;
	posix_spawn_file_actions_t fa;
	double *t, sum = 0;

	if (k < 1) {
		fprintf(stderr, "usage: %s K CMD [ARG...]\n", argv[0]);
		return 2;
	}
	t = calloc(k, sizeof *t);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	for (int i = 0; i < k; i++) {
		pid_t pid;
		int st, err;
		double t0 = now_us();

		if ((err = posix_spawnp(&pid, argv[2], &fa, NULL, argv + 2, environ)) != 0) {
			fprintf(stderr, "timeit: %s: cannot start (errno %d)\n", argv[2], err);
			return 2;
		}
		if (waitpid(pid, &st, 0) < 0) {
			perror("waitpid");
			return 2;
		}
		t[i] = now_us() - t0;
		sum += t[i];
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	qsort(t, k, sizeof *t, by_value);
	printf("median_us=%.0f min_us=%.0f mean_us=%.0f runs=%d failed=%d\n", t[k / 2], t[0], sum / k, k, failed);
	return failed ? 1 : 0;
}
