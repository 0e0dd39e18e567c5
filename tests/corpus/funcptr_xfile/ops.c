// Second translation unit: defines the functions, takes their addresses here too,
// and holds statically initialised tables of function pointers (writable and const).
#include "ops.h"

int op_add(int a, int b) { return a + b; }
int op_sub(int a, int b) { return a - b; }
int op_mul(int a, int b) { return a * b; }
static int op_max(int a, int b) { return a > b ? a : b; }

/* writable global table, initialised statically (.data.rel / .data) */
struct op op_table[] = {
    {"add", op_add},
    {"sub", op_sub},
    {"mul", op_mul},
    {"max", op_max},
};
const int op_count = sizeof op_table / sizeof op_table[0];

/* const table of pointers (.data.rel.ro) */
binop_fn const op_const_table[3] = {op_add, op_sub, op_mul};

/* a plain global function pointer */
binop_fn default_op = op_mul;

binop_fn addr_of_add_in_ops(void) { return &op_add; }
binop_fn addr_of_max(void) { return op_max; }
binop_fn addr_of_max_again(void) { return &op_max; }
void *addr_of_main_in_ops(void) { return (void *)&main; }
