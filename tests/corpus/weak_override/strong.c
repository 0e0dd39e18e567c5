// Strong overrides for some of main.c's weak definitions.
int hook(void) { return 2; }
const char *who(void) { return "strong who (strong.c)"; }
int weak_value = 11;

int strong_calls_hook(void) { return hook() * 100; }
