// string.h functions and snprintf.
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <stdlib.h>

int main(void)
{
    char buf[128];
    strcpy(buf, "Hello");
    strcat(buf, ", ");
    strncat(buf, "World!!!", 6);
    printf("buf='%s' len=%zu\n", buf, strlen(buf));
    printf("strcmp: %d %d %d\n", strcmp("abc", "abd") < 0, strcmp("b", "a") > 0, strcmp("x", "x"));
    printf("strncmp: %d\n", strncmp("abcdef", "abcxyz", 3));
    printf("strcasecmp: %d\n", strcasecmp("HeLLo", "hello"));
    printf("strchr: %s\n", strchr(buf, 'W'));
    printf("strrchr: %s\n", strrchr("a/b/c/d.txt", '/'));
    printf("strstr: %s\n", strstr("the quick brown fox", "brown"));
    printf("strspn: %zu strcspn: %zu\n", strspn("aaabbb", "a"), strcspn("hello world", " "));

    char toks[] = "one,two,,three;four";
    int n = 0;
    for (char *t = strtok(toks, ",;"); t; t = strtok(NULL, ",;"))
        printf("tok[%d]=%s\n", n++, t);

    char m[16] = "0123456789";
    memmove(m + 2, m, 8);
    m[10] = 0;
    printf("memmove: %s\n", m);
    memcpy(m, "ABCD", 4);
    printf("memcpy: %s memcmp: %d\n", m, memcmp("abc", "abc", 3));
    memset(m, '-', 5);
    printf("memset: %s\n", m);

    char *d = strdup("duplicate me");
    for (char *p = d; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    printf("strdup+toupper: %s\n", d);
    free(d);

    int w = snprintf(buf, 10, "%s-%d", "truncated", 12345);
    printf("snprintf: '%s' would=%d\n", buf, w);
    printf("atoi: %d strtol: %ld strtoul: %lu\n", atoi("  -77"), strtol("ff", NULL, 16), strtoul("777", NULL, 8));
    return 0;
}
