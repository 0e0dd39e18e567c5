#include "life.h"

/* B3/S23.  Try B36/S23 ("HighLife"): return neighbours == 3 || neighbours == 6 || ... */
int next_state(int alive, int neighbours)
{
    if (alive)
        return neighbours == 2 || neighbours == 3;
    return neighbours == 3;
}
