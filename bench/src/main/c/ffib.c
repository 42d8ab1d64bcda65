/* The two functions every FFI row of the benchmark calls: a trivial one and one that
 * reads a small buffer. Kept apart from the JNI stubs (ffib_jni.c) so the stubs call them
 * through the library's exported symbols, as a JNI wrapper over a real library would. */
#include <stdint.h>

int32_t ffib_noop(int32_t x) {
    return x + 1;
}

/* Four partial sums: one running sum is a chain of n dependent adds (3-4 cycles each),
 * which for n = 16 costs more than the call being measured. */
float ffib_sum(const float* p, int64_t n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    for (; i < n; i++) {
        s0 += p[i];
    }
    return (s0 + s1) + (s2 + s3);
}
