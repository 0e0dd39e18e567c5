/* Conway's game of life, edited while it runs: change rules.c or draw.c and save. */
#define WIDTH 60
#define HEIGHT 24

extern unsigned char grid[HEIGHT][WIDTH];   /* the board survives every patch */
extern long generation;

int next_state(int alive, int neighbours);  /* rules.c */
void draw(int tty);                         /* draw.c */
