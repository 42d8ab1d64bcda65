package org.caejava.mask;

/** Mixes run seed, epoch and sample index into one well-spread 64-bit seed. */
public final class Seeds {

    private Seeds() {}

    public static long mix(long seed, long epoch, long index) {
        return splitmix(splitmix(splitmix(seed ^ 0x5CAE_5CAE_5CAE_5CAEL) ^ epoch) ^ index);
    }

    static long splitmix(long x) {
        x += 0x9E3779B97F4A7C15L;
        x = (x ^ (x >>> 30)) * 0xBF58476D1CE4E5B9L;
        x = (x ^ (x >>> 27)) * 0x94D049BB133111EBL;
        return x ^ (x >>> 31);
    }
}
