/*
 * The pod sandbox ("pause") process for the local Kubernetes node: PID 1 of every pod, holding
 * the pod's namespaces while the app containers come and go. No registry is reachable here, so
 * containerd's sandbox_image is this program, built with `gcc -static` into a `FROM scratch`
 * image by scripts/k8s/images.sh (localhost/floodgate/pause:3.10).
 *
 * What it does, as the upstream pause does:
 * - SIGINT and SIGTERM end it with status 0 (the runtime stops a sandbox with SIGTERM);
 * - SIGCHLD reaps every exited child: as PID 1 of a shared PID namespace it inherits orphans;
 * - every other catchable signal is blocked: PID 1 must not die of a stray signal;
 * - otherwise it sleeps forever.
 * `pause -v` prints the version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "3.10"

static void on_stop(int signo) {
    (void)signo;
    /* write(2) and _exit(2) are async-signal-safe; stdio is not. */
    static const char msg[] = "pause: stopping on signal\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(0);
}

static void on_child(int signo) {
    (void)signo;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int handle(int signo, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigfillset(&sa.sa_mask); /* no handler interrupts another */
    return sigaction(signo, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        printf("pause %s (floodgate)\n", PAUSE_VERSION);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: pause [-v]\n");
        return 2;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not PID 1 of its namespace\n");
    }

    if (handle(SIGINT, on_stop, 0) != 0 || handle(SIGTERM, on_stop, 0) != 0 ||
        handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0) {
        perror("pause: sigaction");
        return 1;
    }

    /* Block everything else; SIGKILL and SIGSTOP cannot be blocked and need not be. */
    sigset_t blocked;
    sigfillset(&blocked);
    sigdelset(&blocked, SIGINT);
    sigdelset(&blocked, SIGTERM);
    sigdelset(&blocked, SIGCHLD);
    if (sigprocmask(SIG_SETMASK, &blocked, NULL) != 0) {
        perror("pause: sigprocmask");
        return 1;
    }

    for (;;) {
        pause(); /* returns after each handled SIGCHLD */
    }
}
