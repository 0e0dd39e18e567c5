// Archive member: needed by strutil.o and by main.c.
long lib_scale(long x) { return x * 3 + 1; }
