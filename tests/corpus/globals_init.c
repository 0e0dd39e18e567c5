// Globals with initializers: scalars, arrays, structs, pointers to data and strings.
#include <stdio.h>
#include <stdint.h>

int g_int = 42;
long g_long = -1234567890123L;
double g_double = 2.718281828;
char g_str[] = "mutable string";
const char *g_strptr = "pointer to literal";
int g_array[8] = {1, 2, 3, 4, [6] = 60};
int g_zero;
static int s_hidden = 7;
int *g_ptr = &g_array[3];
int **g_ptrptr = &g_ptr;
uint8_t g_bytes[5] = {0xde, 0xad, 0xbe, 0xef, 0x01};

struct config {
    const char *name;
    int version;
    double ratio;
    int *counter;
    struct { short x, y; } pos;
};
struct config g_cfg = {"devlink", 3, 0.75, &g_zero, {-5, 9}};
struct config g_cfgs[] = {
    {"a", 1, 1.0, &s_hidden, {1, 2}},
    {"b", 2, 0.5, &g_int, {3, 4}},
};
char *g_strs[] = {g_str, g_str + 8, 0};

int main(void)
{
    printf("g_int=%d g_long=%ld g_double=%.6f\n", g_int, g_long, g_double);
    printf("g_str=%s g_strptr=%s\n", g_str, g_strptr);
    for (int i = 0; i < 8; i++)
        printf("%d%c", g_array[i], i == 7 ? '\n' : ',');
    printf("g_zero=%d s_hidden=%d *g_ptr=%d **g_ptrptr=%d\n", g_zero, s_hidden, *g_ptr, **g_ptrptr);
    printf("bytes=%02x%02x%02x%02x%02x\n", g_bytes[0], g_bytes[1], g_bytes[2], g_bytes[3], g_bytes[4]);
    printf("cfg=%s v%d %.2f counter=%d pos=(%d,%d)\n", g_cfg.name, g_cfg.version, g_cfg.ratio,
           *g_cfg.counter, g_cfg.pos.x, g_cfg.pos.y);
    for (int i = 0; i < 2; i++)
        printf("cfgs[%d]=%s %d -> %d\n", i, g_cfgs[i].name, g_cfgs[i].version, *g_cfgs[i].counter);
    printf("strs: %s | %s | %p\n", g_strs[0], g_strs[1], (void *)g_strs[2]);
    g_str[0] = 'M';
    g_int++;
    *g_ptr = 99;
    printf("after writes: %s %d %d %d\n", g_strs[0], *g_cfgs[1].counter, g_array[3], **g_ptrptr);
    return 0;
}
