/* test_cli.c - what the trainer's programs share before any work: out of
 * memory, in the model's buffers (jepa_malloc) or in the shard library's
 * (after cli_catch_oom), ends the process with TRAIN_EXIT_NOMEM (5, which
 * jepa-launch and the Slurm job script do not restart) and one line naming
 * the keys to lower, never the library's abort (SIGABRT, restarted like a
 * crash). Each case runs in a child with stderr in a file. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "jepa.h"
#include "shard.h"
#include "shard_internal.h"
#include "testutil.h"

static char log_path[] = "/tmp/test_cli_XXXXXX";

/* How body() in a child ends (exit status, or 128 + signal); its stderr in
 * log_path, read back into line (the last line). */
static int child_end(void (*body)(void), char *line, size_t cap) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_TRUNC);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(99);
        body();
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    line[0] = '\0';
    FILE *f = fopen(log_path, "r");
    char buf[512];
    while (f && fgets(buf, sizeof buf, f)) snprintf(line, cap, "%s", buf);
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

static void reader_oom_caught(void) {
    cli_catch_oom();
    shard_xmalloc(SIZE_MAX / 2);
}

static void reader_oom_default(void) { shard_xmalloc(SIZE_MAX / 2); }

static void model_oom(void) { JEPA_MALLOC(SIZE_MAX / 4); }

static void test_oom_exit(void) {
    char line[512];
    int rc = child_end(reader_oom_caught, line, sizeof line);
    CU_ASSERT_EQUAL(rc, TRAIN_EXIT_NOMEM);
    CU_ASSERT(strstr(line, "jepa: fatal at ") == line);
    CU_ASSERT(strstr(line, "out of memory allocating") != NULL);
    CU_ASSERT(strstr(line, "data.shuffle_buffer") && strstr(line, "data.prefetch") &&
              strstr(line, "train.batch_per_rank"));

    /* without it the library aborts (what cli_catch_oom exists to replace) */
    rc = child_end(reader_oom_default, line, sizeof line);
    CU_ASSERT_EQUAL(rc, 128 + SIGABRT);
    CU_ASSERT(strstr(line, "jepa-shard: out of memory allocating") == line);

    rc = child_end(model_oom, line, sizeof line);
    CU_ASSERT_EQUAL(rc, TRAIN_EXIT_NOMEM);
    CU_ASSERT(strstr(line, "out of memory allocating") && strstr(line, "train.batch_per_rank"));
}

int main(void) {
    int fd = mkstemp(log_path);
    if (fd < 0) return 2;
    close(fd);
    static const test_case cases[] = {
        {"out of memory exits 5 with one line naming the keys", test_oom_exit},
    };
    int rc = test_main("cli", cases, (int)(sizeof cases / sizeof *cases));
    unlink(log_path);
    return rc;
}
