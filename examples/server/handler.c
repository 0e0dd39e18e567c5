#include <stdio.h>
#include <string.h>

extern long lines_served;

/* The answer to one line.  Edit and save: open connections get the new answer. */
size_t handle_line(const char *line, char *reply, size_t cap)
{
    int n = snprintf(reply, cap, "echo #%ld: %s\n", lines_served + 1, line);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
