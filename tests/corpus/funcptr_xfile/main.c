// Function pointers compared across translation units: &f must be the same
// address in every object, in code and in statically initialised data.
#include <stdio.h>
#include "ops.h"

static binop_fn local_table[] = {op_add, op_sub};

int main(void)
{
    printf("&op_add == ops.c's &op_add: %d\n", &op_add == addr_of_add_in_ops());
    printf("op_table[0].fn == op_add: %d\n", op_table[0].fn == op_add);
    printf("op_const_table[1] == op_sub: %d\n", op_const_table[1] == op_sub);
    printf("local_table[0] == op_table[0].fn: %d\n", local_table[0] == op_table[0].fn);
    printf("default_op == op_mul: %d\n", default_op == op_mul);
    printf("static op_max same twice: %d\n", addr_of_max() == addr_of_max_again());
    printf("op_table[3].fn == op_max: %d\n", op_table[3].fn == addr_of_max());
    printf("&main equal: %d\n", (void *)&main == addr_of_main_in_ops());
    printf("distinct: %d\n", op_add != op_sub && op_sub != op_mul);
    for (int i = 0; i < op_count; i++)
        printf("%s(7, 3) = %d\n", op_table[i].name, op_table[i].fn(7, 3));
    for (int i = 0; i < 3; i++)
        printf("const[%d](6, 4) = %d\n", i, op_const_table[i](6, 4));
    default_op = op_table[1].fn;
    printf("default_op now sub: %d -> %d\n", default_op == op_sub, default_op(10, 4));
    return 0;
}
