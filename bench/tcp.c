/* Item 5: two p11chat processes over loopback TCP. */
#include "bench.h"

void bench_tcp(void)
{
}
