// argv, argc and getenv. The harness passes the arguments "a b c" and DEVLINK_TEST_VAR=hello.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv, char **envp)
{
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    printf("argv[argc]=%s\n", argv[argc] ? "non-NULL" : "NULL");
    const char *v = getenv("DEVLINK_TEST_VAR");
    printf("DEVLINK_TEST_VAR=%s\n", v ? v : "(unset)");
    printf("DEVLINK_UNSET_VAR=%s\n", getenv("DEVLINK_UNSET_VAR") ? "set" : "(unset)");
    int found = 0;
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "DEVLINK_TEST_VAR=", 17) == 0)
            found++;
    printf("in envp: %d, environ == envp: %d\n", found, environ == envp);
    setenv("DEVLINK_NEW", "set-in-program", 1);
    printf("DEVLINK_NEW=%s\n", getenv("DEVLINK_NEW"));
    return 0;
}
