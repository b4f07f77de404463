/*
 * INCRBYFLOAT / HINCRBYFLOAT arithmetic in C's long double, as Redis does it.
 *
 * Redis parses both operands with strtold, adds them in long double (the
 * x87 80-bit format on x86-64) and prints the sum with "%.17Lf", trailing
 * zeroes trimmed. Rust has no long double, and an f64 sum prints
 * differently (0.1 + 0.2 is "0.3" in Redis, 0.30000000000000004 in f64), so
 * these two functions do exactly what Redis's string2ld and ld2string
 * (LD_STR_HUMAN) do, with the same libc.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Redis's MAX_LONG_DOUBLE_CHARS: the longest number accepted or printed. */
#define LD_CHARS (5 * 1024)

/* Redis's string2ld: 1 and *out set if s[0..len] is a whole valid number. */
static int parse(const char *s, size_t len, long double *out) {
    char buf[LD_CHARS];
    char *end;
    long double v;
    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* 1 if s[0..len] is a valid number for Redis, 0 if not; *finite says
 * whether it is neither infinite nor NaN. */
int jcache_ld_valid(const char *s, size_t len, int *finite) {
    long double v;
    if (!parse(s, len, &v)) return 0;
    *finite = !isinf(v);
    return 1;
}

/*
 * a + b (a may be NULL: 0), both already valid, printed into out (room for
 * cap bytes, at least LD_CHARS) as Redis's ld2string(LD_STR_HUMAN) prints:
 * "%.17Lf" with trailing zeroes (and a trailing dot) removed, "-0" as "0".
 * Returns the length, or -1 if the sum is NaN or infinite (or a is invalid,
 * or the text does not fit).
 */
long jcache_ld_sum(const char *a, size_t alen, const char *b, size_t blen, char *out,
                   size_t cap) {
    long double x = 0, y;
    int l;
    if (a != NULL && !parse(a, alen, &x)) return -1;
    if (!parse(b, blen, &y)) return -1;
    x += y;
    if (isnan(x) || isinf(x)) return -1;
    l = snprintf(out, cap, "%.17Lf", x);
    if (l < 0 || (size_t)l + 1 > cap) return -1;
    if (memchr(out, '.', (size_t)l) != NULL) {
        while (out[l - 1] == '0') l--;
        if (out[l - 1] == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        l = 1;
    }
    return l;
}
