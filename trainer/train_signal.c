/* train_signal.c - the training loop's signals (train_internal.h):
 * SIGTERM, SIGUSR1 and SIGINT caught as a flag the loop turns into an agreed
 * stop, released for the closing evaluation. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "train_internal.h"

/* SIGTERM, SIGUSR1 (Slurm's warning before a time limit or preemption,
 * `#SBATCH --signal`) and SIGINT (Ctrl-C) only set a flag; the loop turns it
 * into an agreed stop, a checkpoint and a clean exit. A second Ctrl-C kills
 * at once (SA_RESETHAND), and a SIGINT the parent ignores (a shell's
 * background job) stays ignored. */
static volatile sig_atomic_t train_signal;
static void on_signal(int sig) {
    static const char msg[] = "jepa-train: SIGINT: stopping at the end of this step with a "
                              "checkpoint (again: kill at once)\n";
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
 * before summary.json is written). Ctrl-C or SIGTERM in it loses nothing (a
 * resume of the finished run evaluates again), so either ends the process
 * at once, as does one caught since the last step. SIGUSR1 (Slurm's warning
 * before the time limit) stays caught: the evaluation may still finish. */
void train_signals_eval(int on) {
    if (!on) {
        catch_term_int();
        return;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (train_signal == SIGTERM || train_signal == SIGINT) raise(train_signal);
}

void train_signals_restore(void) {
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    sigaction(SIGINT, &old_int, NULL);
}

int train_signal_caught(void) { return (int)train_signal; }

void train_signals_release_int(void) { sigaction(SIGINT, &old_int, NULL); }
