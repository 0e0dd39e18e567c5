// Weak and strong definitions: the strong one in strong.c wins; a weak definition
// with no strong counterpart stays; an undefined weak reference resolves to NULL.
#include <stdio.h>

__attribute__((weak)) int hook(void) { return 1; }
__attribute__((weak)) const char *who(void) { return "weak who (main.c)"; }
__attribute__((weak)) int weak_value = 10;
__attribute__((weak)) int weak_only_value = 20;
__attribute__((weak)) int weak_default(void) { return -1; }

extern void never_defined(void) __attribute__((weak));
extern int never_defined_var __attribute__((weak));

int strong_calls_hook(void);

int main(void)
{
    printf("hook()=%d\n", hook());
    printf("who()=%s\n", who());
    printf("weak_value=%d weak_only_value=%d\n", weak_value, weak_only_value);
    printf("weak_default()=%d\n", weak_default());
    printf("strong.c sees hook()=%d\n", strong_calls_hook());
    printf("never_defined is %s\n", never_defined ? "set" : "NULL");
    printf("&never_defined_var is %s\n", &never_defined_var ? "set" : "NULL");
    int (*hp)(void) = hook;
    printf("&hook consistent: %d\n", hp == hook);
    return 0;
}
