/* train_signal.c - the training loop's signals (train_internal.h):
 * SIGTERM, SIGUSR1 and SIGINT caught as a flag the loop turns into an agreed
 * stop; in the closing evaluation each one ends the process at once. */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "train_internal.h"

static volatile sig_atomic_t in_eval; /* SIGUSR1 is eval_stop() */
static char stop_line[SPEC_STR_MAX + 512], requeue_id[64], requeued[128], unqueued[128];
static size_t stop_len;

static void say(const char *m, size_t n) {
    ssize_t w = write(STDERR_FILENO, m, n); /* async-signal-safe; nothing to do if it fails */
    (void)w;
}

/* SIGUSR1 in the closing evaluation (from the handler, or on entry): the
 * stop every SIGUSR1 is, 75 with a line, at once as SIGINT and SIGTERM
 * there, since checkpoint.bin is published and a resume only evaluates.
 * Only write, posix_spawnp, waitpid and _exit: glibc's posix_spawn is a
 * vfork-like clone and exec, no malloc and no atfork handlers, so it is
 * safe in a handler (POSIX does not promise it). */
static void eval_stop(void) {
    say(stop_line, stop_len);
    if (requeue_id[0]) {
        extern char **environ;
        char *argv[] = {"scontrol", "requeue", requeue_id, NULL};
        pid_t pid;
        int st = 0;
        if (posix_spawnp(&pid, "scontrol", NULL, NULL, argv, environ) == 0 && waitpid(pid, &st, 0) == pid &&
            WIFEXITED(st) && WEXITSTATUS(st) == 0)
            say(requeued, strlen(requeued));
        else
            say(unqueued, strlen(unqueued));
    }
    _exit(TRAIN_EXIT_INTERRUPTED);
}

/* SIGTERM, SIGUSR1 (Slurm's warning before a time limit or preemption,
 * `#SBATCH --signal`) and SIGINT (Ctrl-C) only set a flag; the loop turns it
 * into an agreed stop, a checkpoint and a clean exit. A second Ctrl-C kills
 * at once (SA_RESETHAND), and a SIGINT the parent ignores (a shell's
 * background job) stays ignored. */
static volatile sig_atomic_t train_signal;
static void on_signal(int sig) {
    static const char msg[] = "jepa-train: SIGINT: stopping at the end of this step with a "
                              "checkpoint (again: kill at once)\n";
    if (sig == SIGUSR1 && in_eval) eval_stop();
    train_signal = sig;
    if (sig == SIGINT) { /* write(2) is async-signal-safe; the result does not matter */
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
}
static struct sigaction old_term, old_usr1, old_int;

static void catch_signal(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | flags;
    sigaction(sig, &sa, NULL);
}

/* SIGTERM and SIGINT to on_signal (SIGINT only if not ignored on entry) */
static void catch_term_int(void) {
    catch_signal(SIGTERM, 0);
    if (old_int.sa_handler != SIG_IGN) catch_signal(SIGINT, SA_RESETHAND);
}

void train_signals_catch(void) {
    train_signal = 0;
    sigaction(SIGUSR1, NULL, &old_usr1);
    sigaction(SIGTERM, NULL, &old_term);
    sigaction(SIGINT, NULL, &old_int);
    catch_signal(SIGUSR1, 0);
    catch_term_int();
}

/* The closing evaluation (on: from after checkpoint.bin is published; off:
 * before summary.json is written). A signal in it loses nothing (a resume
 * of the finished run evaluates again), so each ends the process at once,
 * as does one caught since the last step: Ctrl-C and SIGTERM as their
 * default action, SIGUSR1 as the stop it is everywhere else (exit 75 and a
 * line; jepa-launch sends it for the first Ctrl-C, Slurm before the time
 * limit, and a requeued job then evaluates again). */
void train_signals_eval(int on, const char *line, const char *requeue) {
    if (!on) {
        in_eval = 0;
        catch_term_int();
        return;
    }
    stop_len = line ? (size_t)snprintf(stop_line, sizeof stop_line, "%s\n", line) : 0;
    if (stop_len >= sizeof stop_line) stop_len = sizeof stop_line - 1;
    snprintf(requeue_id, sizeof requeue_id, "%s", requeue ? requeue : "");
    snprintf(requeued, sizeof requeued, "train: requeued Slurm job %s (scontrol requeue)\n", requeue_id);
    snprintf(unqueued, sizeof unqueued, "jepa: warning: scontrol requeue %s failed\n", requeue_id);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (train_signal == SIGTERM || train_signal == SIGINT) raise(train_signal);
    in_eval = 1;
    if (train_signal == SIGUSR1) eval_stop();
}

void train_signals_restore(void) {
    in_eval = 0;
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGINT, &old_int, NULL);
}

int train_signal_caught(void) { return (int)train_signal; }

void train_signals_release_int(void) { sigaction(SIGINT, &old_int, NULL); }
