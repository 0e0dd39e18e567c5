#include <stdio.h>
#include "life.h"

/* Colours and glyphs: change them and save. */
#define LIVE "\033[1;32m#\033[0m"
#define DEAD " "

void draw(int tty)
{
    int alive = 0;
    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++)
            alive += grid[y][x];
    if (tty) {
        fputs("\033[H\033[2J", stdout);
        for (int y = 0; y < HEIGHT; y++) {
            for (int x = 0; x < WIDTH; x++)
                fputs(grid[y][x] ? LIVE : DEAD, stdout);
            putchar('\n');
        }
    }
    printf("generation %ld alive %d\n", generation, alive);
    fflush(stdout);
}
