// TLS variables defined in a second translation unit.
_Thread_local int tls_other = 7;
_Thread_local double tls_other_zero;

int *other_tls_addr(void) { return &tls_other; }
void other_tls_bump(void) { tls_other += 10; }
