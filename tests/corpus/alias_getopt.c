// __attribute__((alias)) (two names, one function and one variable) and libc data
// read directly by the program: optind/opterr (getopt) and stdout.
#include <stdio.h>
#include <unistd.h>

int real_impl(int x) { return x * 7; }
int alias_name(int x) __attribute__((alias("real_impl")));
int counter_storage = 3;
extern int counter_alias __attribute__((alias("counter_storage")));

int main(int argc, char **argv)
{
    printf("alias_name(6)=%d same address=%d\n", alias_name(6), (void *)alias_name == (void *)real_impl);
    counter_alias += 4;
    printf("counter_storage=%d same address=%d\n", counter_storage, &counter_alias == &counter_storage);

    opterr = 0;
    int c, vflag = 0;
    while ((c = getopt(argc, argv, "v")) != -1)
        if (c == 'v')
            vflag++;
    printf("vflag=%d optind=%d remaining:", vflag, optind);
    for (int i = optind; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    fputs("stdout used directly\n", stdout);
    return 0;
}
