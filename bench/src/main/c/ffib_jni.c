/* Hand-written JNI stubs for org.caejava.bench.JniStubs: the JNI baseline. */
#include <jni.h>
#include <stdint.h>

int32_t ffib_noop(int32_t x);
float ffib_sum(const float* p, int64_t n);

JNIEXPORT jint JNICALL Java_org_caejava_bench_JniStubs_noop(JNIEnv* env, jclass cls, jint x) {
    (void)env;
    (void)cls;
    return ffib_noop(x);
}

/* address: a raw native address (MemorySegment.address()), n: float count. */
JNIEXPORT jfloat JNICALL Java_org_caejava_bench_JniStubs_sum(JNIEnv* env, jclass cls, jlong address, jint n) {
    (void)env;
    (void)cls;
    return ffib_sum((const float*)(uintptr_t)address, (int64_t)n);
}
