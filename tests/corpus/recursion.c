// Recursion: factorial, Ackermann, mutual recursion, Towers of Hanoi, permutations.
#include <stdio.h>

static unsigned long long fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }

static int ack(int m, int n)
{
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

int is_odd(unsigned n);
int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

static long moves;
static void hanoi(int n, char from, char to, char via)
{
    if (n == 0)
        return;
    hanoi(n - 1, from, via, to);
    moves++;
    if (n == 6)
        printf("move disk 6 %c->%c\n", from, to);
    hanoi(n - 1, via, to, from);
}

static int perms;
static void permute(char *s, int k, int n)
{
    if (k == n) {
        if (perms++ < 4)
            printf("perm %s\n", s);
        return;
    }
    for (int i = k; i < n; i++) {
        char t = s[k]; s[k] = s[i]; s[i] = t;
        permute(s, k + 1, n);
        t = s[k]; s[k] = s[i]; s[i] = t;
    }
}

int main(void)
{
    printf("20! = %llu\n", fact(20));
    printf("ack(2,3)=%d ack(3,3)=%d\n", ack(2, 3), ack(3, 3));
    printf("is_even(1000)=%d is_odd(777)=%d\n", is_even(1000), is_odd(777));
    hanoi(12, 'A', 'C', 'B');
    printf("hanoi(12) moves=%ld\n", moves);
    char s[] = "abcde";
    permute(s, 0, 5);
    printf("permutations=%d\n", perms);
    return 0;
}
