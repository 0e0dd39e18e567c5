#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "life.h"

unsigned char grid[HEIGHT][WIDTH];
long generation;

static void seed(void)
{
    srand(42);
    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++)
            grid[y][x] = rand() % 4 == 0;
}

/* One generation.  Called every frame from main's loop through its GOT cell, so a
 * saved edit of it (or of next_state) runs from the next frame on. */
void step(void)
{
    static unsigned char next[HEIGHT][WIDTH];
    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++) {
            int n = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (dx || dy)
                        n += grid[(y + dy + HEIGHT) % HEIGHT][(x + dx + WIDTH) % WIDTH];
            next[y][x] = next_state(grid[y][x], n);
        }
    memcpy(grid, next, sizeof grid);
    generation++;
}

int main(int argc, char **argv)
{
    int tty = isatty(1);
    int delay_ms = argc > 1 ? atoi(argv[1]) : 100;
    seed();
    /* main never returns, so edits to main itself wait for a restart (press r);
     * everything it calls is patched live */
    for (;;) {
        step();
        draw(tty);
        usleep(delay_ms * 1000);
    }
}
