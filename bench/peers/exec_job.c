/* The exec model's job program (bench/peers/exec_model.py compiles it with gcc at bench time):
 * one process per job, as a supervisor that forks and execs per job would run it.
 *
 *   exec_job start        prints CLOCK_MONOTONIC in microseconds at its first instruction
 *   exec_job sleep MS     sleeps MS milliseconds (a job in flight, for memory)
 *   exec_job sieve LIMIT  counts the primes up to LIMIT (plain sieve, one byte per number:
 *                         the work of the `primes` plugin); prints the count and its own run
 *                         time in microseconds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
    long long started = now_us();
    if (argc >= 2 && strcmp(argv[1], "start") == 0) {
        printf("%lld\n", started);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "sleep") == 0) {
        long ms = atol(argv[2]);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "sieve") == 0) {
        long limit = atol(argv[2]);
        unsigned char *flags = malloc((size_t)limit + 1);
        if (!flags) return 1;
        memset(flags, 1, (size_t)limit + 1);
        flags[0] = 0;
        if (limit >= 1) flags[1] = 0;
        for (long i = 2; i * i <= limit; i++)
            if (flags[i])
                for (long j = i * i; j <= limit; j += i) flags[j] = 0;
        long count = 0;
        for (long i = 0; i <= limit; i++) count += flags[i];
        free(flags);
        printf("%ld %lld\n", count, now_us() - started);
        return 0;
    }
    fprintf(stderr, "usage: exec_job start | sleep MS | sieve LIMIT\n");
    return 2;
}
