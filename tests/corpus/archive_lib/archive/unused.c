// Archive member that nothing references: it must not be linked in (its `shadowed`
// would clash with main.c's).
int shadowed(void) { return 2; }
int unused_function(void) { return 3; }
