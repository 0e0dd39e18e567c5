// Signals: signal() and sigaction() handlers invoked synchronously with raise().
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1, got_usr2, last_sig;

static void on_usr1(int sig)
{
    got_usr1++;
    last_sig = sig;
    static const char msg[] = "in SIGUSR1 handler\n";
    fflush(stdout);
    write(1, msg, sizeof msg - 1);
}

static void on_usr2(int sig, siginfo_t *info, void *ctx)
{
    (void)ctx;
    got_usr2++;
    last_sig = sig + 1000 * (info->si_signo == sig);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr2;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);

    raise(SIGUSR1);
    raise(SIGUSR1);
    printf("usr1 count=%d last=%d\n", (int)got_usr1, (int)last_sig);
    raise(SIGUSR2);
    printf("usr2 count=%d last=%d\n", (int)got_usr2, (int)last_sig);

    struct sigaction cur;
    sigaction(SIGUSR1, NULL, &cur);
    printf("handler still installed: %d\n", cur.sa_handler == on_usr1);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    printf("while blocked count=%d\n", (int)got_usr1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("after unblock count=%d\n", (int)got_usr1);

    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    printf("ignored, count=%d\n", (int)got_usr1);
    return 0;
}
