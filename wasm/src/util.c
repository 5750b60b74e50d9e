/* The few libc routines clang may call in a freestanding build. */
#include "gl.h"

void *memcpy(void *d, const void *s, size_t n) {
	__builtin_memcpy(d, s, n); /* lowered to memory.copy with -mbulk-memory */
	return d;
}
void *memmove(void *d, const void *s, size_t n) {
	__builtin_memmove(d, s, n);
	return d;
}
void *memset(void *d, int c, size_t n) {
	__builtin_memset(d, c, n);
	return d;
}
void gl_memcpy(void *d, const void *s, uint32_t n) { __builtin_memcpy(d, s, n); }
void gl_memset(void *d, int c, uint32_t n) { __builtin_memset(d, c, n); }
