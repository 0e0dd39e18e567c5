typedef int (*binop_fn)(int, int);
struct op {
    const char *name;
    binop_fn fn;
};
int op_add(int, int);
int op_sub(int, int);
int op_mul(int, int);
extern struct op op_table[];
extern const int op_count;
extern binop_fn const op_const_table[3];
extern binop_fn default_op;
binop_fn addr_of_add_in_ops(void);
binop_fn addr_of_max(void);
binop_fn addr_of_max_again(void);
void *addr_of_main_in_ops(void);
int main(void);
