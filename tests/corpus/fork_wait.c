// fork + waitpid: the child runs the same program image, writes, and exits with a code.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int shared_before_fork = 10;

static int child_work(int k) { return shared_before_fork * k + 1; }

int main(void)
{
    fflush(stdout);
    for (int k = 1; k <= 3; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            shared_before_fork += 5;   /* only the child's copy changes */
            printf("child %d computes %d\n", k, child_work(k));
            fflush(stdout);
            _exit(k + 20);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("parent: child %d exited=%d code=%d, parent's value still %d\n", k, WIFEXITED(status),
               WEXITSTATUS(status), shared_before_fork);
        fflush(stdout);
    }
    return 0;
}
