// setjmp / longjmp, including a jump out of nested calls and a sigsetjmp.
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>

static jmp_buf env;
static sigjmp_buf senv;
static int depth_reached;

static void dive(int depth)
{
    depth_reached = depth;
    if (depth == 5)
        longjmp(env, depth * 10);
    dive(depth + 1);
    puts("never printed");
}

static void on_alarm(int sig)
{
    siglongjmp(senv, sig);
}

int main(void)
{
    volatile int attempts = 0;
    int r = setjmp(env);
    attempts++;
    printf("setjmp returned %d (attempt %d)\n", r, attempts);
    if (r == 0)
        dive(1);
    printf("depth reached %d\n", depth_reached);

    r = setjmp(env);
    if (r < 3)
        longjmp(env, r + 1);
    printf("looped with longjmp until %d\n", r);

    signal(SIGUSR1, on_alarm);
    int s = sigsetjmp(senv, 1);
    if (s == 0) {
        raise(SIGUSR1);
        puts("never printed either");
    }
    printf("siglongjmp from handler with signal %s\n", s == SIGUSR1 ? "SIGUSR1" : "?");
    return 0;
}
