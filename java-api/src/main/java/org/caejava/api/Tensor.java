package org.caejava.api;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;
import org.caejava.bindings.CaeNative;
import org.caejava.bindings.cae_tensor;

/**
 * A dense, contiguous, row-major tensor in off-heap memory: on the host (memory of a Java
 * {@link Arena}, or page-locked memory of a {@link Context}) or on a context's device.
 *
 * <p>A tensor is owned by the arena it was allocated in: closing the arena frees it (device
 * memory included), and any later use throws {@link IllegalStateException} instead of touching
 * freed memory. Views ({@link #view}, {@link #slice}, {@link #select}) share the memory and the
 * lifetime of the tensor they come from.
 *
 * <p>Element access ({@link #getFloat}, {@link #setFloat}, ...) works on host tensors; device
 * tensors are read and written through copies ({@link #copyFrom(float[])}, {@link
 * #toFloatArray()}, {@link #copyFrom(Tensor)}, {@link #to}).
 *
 * <p>A {@code Tensor} object never changes (dtype, shape and memory are fixed), but its elements
 * are not synchronized: a write at the same time as another read or write needs the caller's own
 * synchronization. A tensor of a confined arena is usable only from that arena's thread; device
 * and page-locked tensors follow their context's rule of one thread at a time.
 */
public final class Tensor {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED;
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;

    /** Where the bytes are. {@code context} is null for plain Java-arena host memory. */
    private sealed interface Storage permits HostMemory, DeviceMemory {}

    private record HostMemory(MemorySegment segment, Context context) implements Storage {}

    /** {@code buffer} is the cae_buffer handle, scoped to the owning arena. */
    private record DeviceMemory(MemorySegment buffer, long bytes, Context context) implements Storage {}

    private final DType dtype;
    private final long[] shape;
    private final long numel;
    private final Storage storage;
    private final long offset;

    private Tensor(DType dtype, long[] shape, Storage storage, long offset) {
        this.dtype = dtype;
        this.shape = shape;
        this.numel = numel(shape);
        this.storage = storage;
        this.offset = offset;
    }

    // ---------------------------------------------------------------- creation

    /**
     * A zero-filled host tensor in {@code arena}.
     *
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param dtype the element type
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws IllegalArgumentException when a dimension is negative
     * @throws ArithmeticException when the element count overflows a long
     */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        Objects.requireNonNull(arena, "arena");
        long[] s = checkShape(shape);
        long bytes = numel(s) * dtype.byteSize();
        return new Tensor(dtype, s, new HostMemory(arena.allocate(Math.max(bytes, 1), 64), null), 0);
    }

    /**
     * A zero-filled host tensor in page-locked memory of {@code context}, owned by {@code arena}.
     *
     * @param context the open context whose memory it is
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param dtype the element type
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws CaeException when the allocation fails
     * @throws IllegalArgumentException when a dimension is negative
     */
    public static Tensor allocatePinned(Context context, Arena arena, DType dtype, long... shape) {
        long[] s = checkShape(shape);
        long bytes = numel(s) * dtype.byteSize();
        MemorySegment buffer = createBuffer(context, CaeNative.CAE_MEMORY_HOST_PINNED(), bytes, dtype, s);
        MemorySegment host;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            int status = CaeNative.cae_buffer_host_pointer(buffer, out);
            if (status != 0) {
                CaeException e = Native.failure(status, "mapping a pinned tensor");
                CaeNative.cae_buffer_destroy(buffer);
                throw e;
            }
            host = out.get(ValueLayout.ADDRESS, 0);
        }
        MemorySegment owned = host.reinterpret(Math.max(bytes, 1), arena, ignored -> CaeNative.cae_buffer_destroy(buffer));
        return new Tensor(dtype, s, new HostMemory(owned, context), 0);
    }

    /**
     * A zero-filled tensor in the device memory of {@code context}, owned by {@code arena}.
     *
     * @param context the open context whose memory it is
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param dtype the element type
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws CaeException when the allocation fails
     * @throws IllegalArgumentException when a dimension is negative
     */
    public static Tensor allocateDevice(Context context, Arena arena, DType dtype, long... shape) {
        long[] s = checkShape(shape);
        long bytes = numel(s) * dtype.byteSize();
        MemorySegment buffer = createBuffer(context, CaeNative.CAE_MEMORY_DEVICE(), bytes, dtype, s);
        MemorySegment owned = buffer.reinterpret(arena, CaeNative::cae_buffer_destroy);
        return new Tensor(dtype, s, new DeviceMemory(owned, Math.max(bytes, 1), context), 0);
    }

    /**
     * A tensor of {@code location} in {@code context}: device memory or page-locked host memory.
     *
     * @param context the open context whose memory it is
     * @param location {@link Location#DEVICE} for device memory, {@link Location#HOST} for
     *     page-locked host memory
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param dtype the element type
     * @param shape the dimensions, none negative
     * @return the new zero-filled tensor
     * @throws CaeException when the allocation fails
     */
    public static Tensor allocate(Context context, Location location, Arena arena, DType dtype, long... shape) {
        return location == Location.DEVICE ? allocateDevice(context, arena, dtype, shape)
                : allocatePinned(context, arena, dtype, shape);
    }

    /**
     * A tensor over existing host memory (for instance a memory-mapped file), without copying.
     * The tensor lives as long as the segment's scope.
     *
     * @param segment off-heap memory of at least the tensor's byte size, row-major elements
     * @param dtype the element type
     * @param shape the dimensions, none negative
     * @return a tensor over the first bytes of {@code segment}
     * @throws IllegalArgumentException when the segment is on the Java heap or too small
     */
    public static Tensor wrap(MemorySegment segment, DType dtype, long... shape) {
        Objects.requireNonNull(segment, "segment");
        long[] s = checkShape(shape);
        long bytes = numel(s) * dtype.byteSize();
        if (segment.isNative() == false) {
            throw new IllegalArgumentException("only native (off-heap) memory can back a tensor");
        }
        if (segment.byteSize() < bytes) {
            throw new IllegalArgumentException("a " + dtype + " tensor of shape " + Arrays.toString(s) + " needs "
                    + bytes + " bytes, the segment has " + segment.byteSize());
        }
        return new Tensor(dtype, s, new HostMemory(segment, null), 0);
    }

    /**
     * A new F32 host tensor holding {@code data}.
     *
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param data the elements, row-major
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws IllegalArgumentException when {@code data} does not hold exactly the shape's elements
     */
    public static Tensor of(Arena arena, float[] data, long... shape) {
        return of(arena, DType.F32, data, shape);
    }

    /**
     * A new F32 or BF16 host tensor holding {@code data} (rounded to nearest even for BF16).
     *
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param dtype F32 or BF16
     * @param data the elements, row-major
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws IllegalArgumentException when {@code data} does not hold exactly the shape's elements
     * @throws IllegalStateException for another dtype
     */
    public static Tensor of(Arena arena, DType dtype, float[] data, long... shape) {
        Tensor t = allocate(arena, dtype, shape);
        t.copyFrom(data);
        return t;
    }

    /**
     * A new U8 host tensor holding {@code data}.
     *
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param data the elements, row-major
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws IllegalArgumentException when {@code data} does not hold exactly the shape's elements
     */
    public static Tensor of(Arena arena, byte[] data, long... shape) {
        Tensor t = allocate(arena, DType.U8, shape);
        t.copyFrom(data);
        return t;
    }

    /**
     * A new I32 host tensor holding {@code data}.
     *
     * @param arena the arena that owns the memory; closing it frees the tensor
     * @param data the elements, row-major
     * @param shape the dimensions, none negative
     * @return the new tensor
     * @throws IllegalArgumentException when {@code data} does not hold exactly the shape's elements
     */
    public static Tensor of(Arena arena, int[] data, long... shape) {
        Tensor t = allocate(arena, DType.I32, shape);
        t.copyFrom(data);
        return t;
    }

    // ---------------------------------------------------------------- properties

    /**
     * The element type.
     *
     * @return the dtype
     */
    public DType dtype() {
        return dtype;
    }

    /**
     * The dimensions, row-major.
     *
     * @return a copy of the shape
     */
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The number of dimensions.
     *
     * @return the rank; 0 for a scalar
     */
    public int rank() {
        return shape.length;
    }

    /**
     * The length of one dimension.
     *
     * @param dim the dimension, from 0 to {@link #rank()} - 1
     * @return its length
     * @throws IndexOutOfBoundsException when {@code dim} is out of range
     */
    public long size(int dim) {
        return shape[checkDim(dim)];
    }

    /**
     * The number of elements.
     *
     * @return the product of the dimensions; 1 for a scalar
     */
    public long numel() {
        return numel;
    }

    /**
     * The size of the elements in bytes.
     *
     * @return {@link #numel()} times the dtype's byte size
     */
    public long byteSize() {
        return numel * dtype.byteSize();
    }

    /**
     * Where the elements live.
     *
     * @return {@link Location#DEVICE} for device memory, {@link Location#HOST} for host memory
     *     (page-locked or not)
     */
    public Location location() {
        return storage instanceof DeviceMemory ? Location.DEVICE : Location.HOST;
    }

    /**
     * The context of device or pinned memory; null for plain host memory.
     *
     * @return the context, or null
     */
    public Context context() {
        return switch (storage) {
            case HostMemory h -> h.context();
            case DeviceMemory d -> d.context();
        };
    }

    /**
     * True while the memory is not freed (its arena is open).
     *
     * @return whether the tensor can be used; for a device tensor, also whether its context is open
     */
    public boolean isAlive() {
        return switch (storage) {
            case HostMemory h -> h.segment().scope().isAlive();
            case DeviceMemory d -> d.buffer().scope().isAlive() && d.context().isOpen();
        };
    }

    /**
     * The host memory of this tensor (exactly {@link #byteSize()} bytes). Host tensors only.
     *
     * @return a slice of the memory, valid as long as the tensor
     * @throws IllegalStateException for a device tensor or freed memory
     */
    public MemorySegment segment() {
        return host().asSlice(offset, byteSize());
    }

    /**
     * The cae_buffer handle of a device tensor, for the wrappers of this library; the tensor starts
     * at {@link #byteOffset()} in it.
     *
     * @return the native buffer handle, valid as long as the tensor
     * @throws IllegalStateException for a host tensor, freed memory or a closed context
     */
    public MemorySegment deviceBuffer() {
        return device().buffer();
    }

    /**
     * Byte offset of this tensor in its device buffer or host segment.
     *
     * @return the offset in bytes; 0 unless the tensor is a slice or row of another
     */
    public long byteOffset() {
        return offset;
    }

    // ---------------------------------------------------------------- views

    /**
     * The same elements with another shape; one dimension may be -1 (inferred).
     *
     * @param newShape the dimensions, with the same number of elements
     * @return a view sharing this tensor's memory
     * @throws IllegalArgumentException when the element counts differ or a dimension is invalid
     * @throws IllegalStateException when the memory is freed
     */
    public Tensor view(long... newShape) {
        long[] s = newShape.clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1 && infer < 0) {
                infer = i;
            } else if (s[i] < 0) {
                throw new IllegalArgumentException("bad dimension " + s[i] + " in view " + Arrays.toString(newShape));
            } else {
                known = Math.multiplyExact(known, s[i]);
            }
        }
        if (infer >= 0) {
            if (known == 0 || numel % known != 0) {
                throw new IllegalArgumentException("cannot view " + this + " as " + Arrays.toString(newShape));
            }
            s[infer] = numel / known;
        }
        if (numel(s) != numel) {
            throw new IllegalArgumentException("cannot view " + this + " (" + numel + " elements) as "
                    + Arrays.toString(newShape) + " (" + numel(s) + " elements)");
        }
        ensureAlive();
        return new Tensor(dtype, s, storage, offset);
    }

    /**
     * Rows {@code [from, to)} of dimension 0.
     *
     * @param from the first row
     * @param to one past the last row
     * @return a view sharing this tensor's memory
     * @throws IndexOutOfBoundsException when the range is outside dimension 0
     * @throws IllegalArgumentException for a scalar tensor
     * @throws IllegalStateException when the memory is freed
     */
    public Tensor slice(long from, long to) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("cannot slice a scalar tensor");
        }
        if (from < 0 || to < from || to > shape[0]) {
            throw new IndexOutOfBoundsException("slice [" + from + ", " + to + ") of dimension 0 of size " + shape[0]);
        }
        long[] s = shape.clone();
        s[0] = to - from;
        ensureAlive();
        return new Tensor(dtype, s, storage, offset + from * rowBytes());
    }

    /**
     * Row {@code index} of dimension 0, with that dimension dropped.
     *
     * @param index the row
     * @return a view sharing this tensor's memory, of rank one less
     * @throws IndexOutOfBoundsException when {@code index} is outside dimension 0
     * @throws IllegalArgumentException for a scalar tensor
     * @throws IllegalStateException when the memory is freed
     */
    public Tensor select(long index) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("cannot select from a scalar tensor");
        }
        Objects.checkIndex(index, shape[0]);
        ensureAlive();
        return new Tensor(dtype, Arrays.copyOfRange(shape, 1, shape.length), storage, offset + index * rowBytes());
    }

    // ---------------------------------------------------------------- element access (host)

    /**
     * One element as a float: F32 as is, BF16 widened, U8 and I32 converted. Host tensors only.
     *
     * @param index one index per dimension
     * @return the element
     * @throws IndexOutOfBoundsException when an index is out of range
     * @throws IllegalArgumentException when the number of indices is not the rank
     * @throws IllegalStateException for a device tensor or freed memory
     */
    public float getFloat(long... index) {
        long i = flatIndex(index);
        return switch (dtype) {
            case F32 -> host().get(F32, offset + 4 * i);
            case BF16 -> bf16ToFloat(host().get(I16, offset + 2 * i));
            case U8 -> Byte.toUnsignedInt(host().get(ValueLayout.JAVA_BYTE, offset + i));
            case I32 -> host().get(I32, offset + 4 * i);
        };
    }

    /**
     * Sets one element of an F32 or BF16 host tensor (rounded to nearest even for BF16).
     *
     * @param value the new value
     * @param index one index per dimension
     * @throws IndexOutOfBoundsException when an index is out of range
     * @throws IllegalArgumentException when the number of indices is not the rank
     * @throws IllegalStateException for another dtype, a device tensor or freed memory
     */
    public void setFloat(float value, long... index) {
        long i = flatIndex(index);
        switch (dtype) {
            case F32 -> host().set(F32, offset + 4 * i, value);
            case BF16 -> host().set(I16, offset + 2 * i, floatToBf16(value));
            default -> throw new IllegalStateException("setFloat on a " + dtype + " tensor: use setInt");
        }
    }

    /**
     * Integer element of an I32 or U8 (0..255) tensor. Host tensors only.
     *
     * @param index one index per dimension
     * @return the element
     * @throws IndexOutOfBoundsException when an index is out of range
     * @throws IllegalArgumentException when the number of indices is not the rank
     * @throws IllegalStateException for another dtype, a device tensor or freed memory
     */
    public int getInt(long... index) {
        long i = flatIndex(index);
        return switch (dtype) {
            case I32 -> host().get(I32, offset + 4 * i);
            case U8 -> Byte.toUnsignedInt(host().get(ValueLayout.JAVA_BYTE, offset + i));
            default -> throw new IllegalStateException("getInt on a " + dtype + " tensor: use getFloat");
        };
    }

    /**
     * Sets one element of an I32 or U8 host tensor.
     *
     * @param value the new value; 0 to 255 for U8
     * @param index one index per dimension
     * @throws IndexOutOfBoundsException when an index is out of range
     * @throws IllegalArgumentException when the number of indices is not the rank, or the value
     *     does not fit a U8 element
     * @throws IllegalStateException for another dtype, a device tensor or freed memory
     */
    public void setInt(int value, long... index) {
        long i = flatIndex(index);
        switch (dtype) {
            case I32 -> host().set(I32, offset + 4 * i, value);
            case U8 -> {
                if (value < 0 || value > 255) {
                    throw new IllegalArgumentException("value " + value + " does not fit a U8 element");
                }
                host().set(ValueLayout.JAVA_BYTE, offset + i, (byte) value);
            }
            default -> throw new IllegalStateException("setInt on a " + dtype + " tensor: use setFloat");
        }
    }

    // ---------------------------------------------------------------- bulk copies

    /**
     * Copies all elements from {@code src} (F32, or BF16 rounded to nearest even).
     *
     * @param src exactly {@link #numel()} values, row-major
     * @throws IllegalArgumentException when the length differs from {@link #numel()}
     * @throws IllegalStateException for another dtype or freed memory
     * @throws CaeException when the copy to device memory fails
     */
    public void copyFrom(float[] src) {
        requireLength(src.length);
        if (dtype != DType.F32 && dtype != DType.BF16) {
            throw new IllegalStateException("copyFrom(float[]) into a " + dtype + " tensor");
        }
        writeThroughHost(staging -> {
            if (dtype == DType.F32) {
                MemorySegment.copy(src, 0, staging, F32, 0, src.length);
            } else {
                for (int i = 0; i < src.length; i++) {
                    staging.set(I16, 2L * i, floatToBf16(src[i]));
                }
            }
        });
    }

    /**
     * Copies all elements from {@code src} into a U8 tensor.
     *
     * @param src exactly {@link #numel()} bytes, row-major
     * @throws IllegalArgumentException when the length differs from {@link #numel()}
     * @throws IllegalStateException for another dtype or freed memory
     * @throws CaeException when the copy to device memory fails
     */
    public void copyFrom(byte[] src) {
        requireLength(src.length);
        requireDType(DType.U8, "copyFrom(byte[])");
        writeThroughHost(staging -> MemorySegment.copy(src, 0, staging, ValueLayout.JAVA_BYTE, 0, src.length));
    }

    /**
     * Copies all elements from {@code src} into an I32 tensor.
     *
     * @param src exactly {@link #numel()} values, row-major
     * @throws IllegalArgumentException when the length differs from {@link #numel()}
     * @throws IllegalStateException for another dtype or freed memory
     * @throws CaeException when the copy to device memory fails
     */
    public void copyFrom(int[] src) {
        requireLength(src.length);
        requireDType(DType.I32, "copyFrom(int[])");
        writeThroughHost(staging -> MemorySegment.copy(src, 0, staging, I32, 0, src.length));
    }

    /**
     * The elements as floats (F32, BF16 widened, U8 and I32 converted).
     *
     * @return a new array of {@link #numel()} values, row-major
     * @throws IllegalStateException when the memory is freed or too large for an array
     * @throws CaeException when the copy from device memory fails
     */
    public float[] toFloatArray() {
        float[] out = new float[arrayLength()];
        readThroughHost(h -> {
            switch (dtype) {
                case F32 -> MemorySegment.copy(h, F32, 0, out, 0, out.length);
                case BF16 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = bf16ToFloat(h.get(I16, 2L * i));
                    }
                }
                case U8 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = Byte.toUnsignedInt(h.get(ValueLayout.JAVA_BYTE, i));
                    }
                }
                case I32 -> {
                    for (int i = 0; i < out.length; i++) {
                        out[i] = h.get(I32, 4L * i);
                    }
                }
            }
        });
        return out;
    }

    /**
     * The bytes of a U8 tensor.
     *
     * @return a new array of {@link #numel()} bytes, row-major
     * @throws IllegalStateException for another dtype, freed memory, or a tensor too large for an array
     * @throws CaeException when the copy from device memory fails
     */
    public byte[] toByteArray() {
        requireDType(DType.U8, "toByteArray()");
        byte[] out = new byte[arrayLength()];
        readThroughHost(h -> MemorySegment.copy(h, ValueLayout.JAVA_BYTE, 0, out, 0, out.length));
        return out;
    }

    /**
     * The elements of an I32 tensor.
     *
     * @return a new array of {@link #numel()} values, row-major
     * @throws IllegalStateException for another dtype, freed memory, or a tensor too large for an array
     * @throws CaeException when the copy from device memory fails
     */
    public int[] toIntArray() {
        requireDType(DType.I32, "toIntArray()");
        int[] out = new int[arrayLength()];
        readThroughHost(h -> MemorySegment.copy(h, I32, 0, out, 0, out.length));
        return out;
    }

    /**
     * Copies {@code src} into this tensor: host or device on either side, same dtype and shape.
     * Device-to-device copies need both tensors in the same context.
     *
     * @param src the tensor to copy from
     * @throws IllegalArgumentException when dtype or shape differ, or two device tensors belong to
     *     different contexts
     * @throws IllegalStateException when either tensor's memory is freed
     * @throws CaeException when a native copy fails
     */
    public void copyFrom(Tensor src) {
        Objects.requireNonNull(src, "src");
        if (src.dtype != dtype || !Arrays.equals(src.shape, shape)) {
            throw new IllegalArgumentException("cannot copy " + src + " into " + this + ": dtype and shape must match");
        }
        src.ensureAlive();
        ensureAlive();
        long bytes = byteSize();
        if (bytes == 0) {
            return;
        }
        switch (storage) {
            case HostMemory h -> {
                switch (src.storage) {
                    case HostMemory sh -> MemorySegment.copy(sh.segment(), src.offset, h.segment(), offset, bytes);
                    case DeviceMemory sd -> Native.check(CaeNative.cae_buffer_read(sd.buffer(), src.offset,
                            h.segment().asSlice(offset, bytes), bytes), "copying " + src + " to the host");
                }
            }
            case DeviceMemory d -> {
                switch (src.storage) {
                    case HostMemory sh -> Native.check(CaeNative.cae_buffer_write(d.buffer(), offset,
                            sh.segment().asSlice(src.offset, bytes), bytes), "copying " + src + " to the device");
                    case DeviceMemory sd -> {
                        if (sd.context() != d.context()) {
                            throw new IllegalArgumentException("cannot copy " + src + " into " + this
                                    + ": the tensors belong to different contexts (copy through a host tensor)");
                        }
                        Native.check(CaeNative.cae_buffer_copy(d.buffer(), offset, sd.buffer(), src.offset, bytes),
                                "copying " + src + " to " + this);
                    }
                }
            }
        }
    }

    /**
     * A copy of this tensor in plain host memory of {@code arena}.
     *
     * @param arena the arena that owns the copy
     * @return the new host tensor
     * @throws CaeException when the copy from device memory fails
     */
    public Tensor toHost(Arena arena) {
        Tensor t = allocate(arena, dtype, shape);
        t.copyFrom(this);
        return t;
    }

    /**
     * A copy of this tensor in {@code location} of {@code context}, owned by {@code arena}.
     *
     * @param context the open context whose memory the copy is in
     * @param location device memory or page-locked host memory
     * @param arena the arena that owns the copy
     * @return the new tensor
     * @throws CaeException when the allocation or the copy fails
     */
    public Tensor to(Context context, Location location, Arena arena) {
        Tensor t = allocate(context, location, arena, dtype, shape);
        t.copyFrom(this);
        return t;
    }

    /**
     * Sets every element to zero.
     *
     * @throws IllegalStateException when the memory is freed
     * @throws CaeException when filling device memory fails
     */
    public void zero() {
        ensureAlive();
        long bytes = byteSize();
        if (bytes == 0) {
            return;
        }
        switch (storage) {
            case HostMemory h -> h.segment().asSlice(offset, bytes).fill((byte) 0);
            case DeviceMemory d -> Native.check(CaeNative.cae_buffer_fill(d.buffer(), offset, bytes, (byte) 0),
                    "zeroing " + this);
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Tensor[").append(dtype).append(' ');
        for (int i = 0; i < shape.length; i++) {
            sb.append(i == 0 ? "" : "x").append(shape[i]);
        }
        if (shape.length == 0) {
            sb.append("scalar");
        }
        sb.append(' ').append(location() == Location.DEVICE ? "device" : context() != null ? "pinned" : "host");
        if (!isAlive()) {
            sb.append(", freed");
        }
        return sb.append(']').toString();
    }

    // ---------------------------------------------------------------- bf16

    /**
     * Rounds a float to bfloat16 (round to nearest, ties to even; NaN stays NaN).
     *
     * @param f the value
     * @return the 16 bits of the bfloat16
     */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /**
     * Widens a bfloat16 to the float of the same value (exact).
     *
     * @param h the 16 bits of the bfloat16
     * @return the value as a float
     */
    public static float bf16ToFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    // ---------------------------------------------------------------- internals

    /** Fills a {@code cae_tensor} struct describing this tensor for a native call. */
    void describe(MemorySegment struct) {
        ensureAlive();
        if (shape.length > CaeNative.CAE_MAX_DIMS()) {
            throw new IllegalArgumentException(this + " has more than " + CaeNative.CAE_MAX_DIMS() + " dimensions");
        }
        cae_tensor.dtype(struct, switch (dtype) {
            case F32 -> CaeNative.CAE_DTYPE_F32();
            case BF16 -> CaeNative.CAE_DTYPE_BF16();
            case U8 -> CaeNative.CAE_DTYPE_U8();
            case I32 -> CaeNative.CAE_DTYPE_I32();
        });
        cae_tensor.ndim(struct, shape.length);
        for (int i = 0; i < CaeNative.CAE_MAX_DIMS(); i++) {
            cae_tensor.shape(struct, i, i < shape.length ? shape[i] : 0);
        }
        switch (storage) {
            case HostMemory h -> {
                cae_tensor.host_data(struct, h.segment().asSlice(offset, Math.max(byteSize(), 1)));
                cae_tensor.buffer(struct, MemorySegment.NULL);
                cae_tensor.offset(struct, 0);
            }
            case DeviceMemory d -> {
                cae_tensor.host_data(struct, MemorySegment.NULL);
                cae_tensor.buffer(struct, d.buffer());
                cae_tensor.offset(struct, offset);
            }
        }
    }

    private interface SegmentAction {
        void accept(MemorySegment segment);
    }

    /** Lets {@code fill} write the tensor's bytes into host memory, then moves them in place. */
    private void writeThroughHost(SegmentAction fill) {
        ensureAlive();
        switch (storage) {
            case HostMemory h -> fill.accept(h.segment().asSlice(offset, byteSize()));
            case DeviceMemory d -> {
                try (Arena call = Arena.ofConfined()) {
                    MemorySegment staging = call.allocate(Math.max(byteSize(), 1), 64);
                    fill.accept(staging);
                    Native.check(CaeNative.cae_buffer_write(d.buffer(), offset, staging, byteSize()),
                            "copying host data into " + this);
                }
            }
        }
    }

    /** Shows the tensor's bytes in host memory to {@code read}. */
    private void readThroughHost(SegmentAction read) {
        ensureAlive();
        switch (storage) {
            case HostMemory h -> read.accept(h.segment().asSlice(offset, byteSize()));
            case DeviceMemory d -> {
                try (Arena call = Arena.ofConfined()) {
                    MemorySegment staging = call.allocate(Math.max(byteSize(), 1), 64);
                    Native.check(CaeNative.cae_buffer_read(d.buffer(), offset, staging, byteSize()),
                            "copying " + this + " to the host");
                    read.accept(staging);
                }
            }
        }
    }

    private MemorySegment host() {
        ensureAlive();
        if (storage instanceof HostMemory h) {
            return h.segment();
        }
        throw new IllegalStateException(this + " is in device memory: copy it to the host first (toHost)");
    }

    private DeviceMemory device() {
        ensureAlive();
        if (storage instanceof DeviceMemory d) {
            return d;
        }
        throw new IllegalStateException(this + " is in host memory, not in a device buffer");
    }

    private void ensureAlive() {
        switch (storage) {
            case HostMemory h -> {
                if (!h.segment().scope().isAlive()) {
                    throw new IllegalStateException("the memory of this " + dtype + " tensor of shape "
                            + Arrays.toString(shape) + " was freed: its arena is closed");
                }
            }
            case DeviceMemory d -> {
                if (!d.buffer().scope().isAlive()) {
                    throw new IllegalStateException("the device memory of this " + dtype + " tensor of shape "
                            + Arrays.toString(shape) + " was freed: its arena is closed");
                }
                if (!d.context().isOpen()) {
                    throw new IllegalStateException("the context of this device tensor " + Arrays.toString(shape)
                            + " is closed");
                }
            }
        }
    }

    private long rowBytes() {
        return numel(Arrays.copyOfRange(shape, 1, shape.length)) * dtype.byteSize();
    }

    private long flatIndex(long[] index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index " + Arrays.toString(index) + " has " + index.length
                    + " dimensions, the tensor has " + shape.length);
        }
        long flat = 0;
        for (int d = 0; d < shape.length; d++) {
            if (index[d] < 0 || index[d] >= shape[d]) {
                throw new IndexOutOfBoundsException("index " + Arrays.toString(index) + " is outside shape "
                        + Arrays.toString(shape) + " (dimension " + d + ")");
            }
            flat = flat * shape[d] + index[d];
        }
        return flat;
    }

    private int checkDim(int dim) {
        if (dim < 0 || dim >= shape.length) {
            throw new IndexOutOfBoundsException("dimension " + dim + " of a rank-" + shape.length + " tensor");
        }
        return dim;
    }

    private int arrayLength() {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException(this + " has too many elements for a Java array");
        }
        return (int) numel;
    }

    private void requireLength(int length) {
        if (length != numel) {
            throw new IllegalArgumentException("array of " + length + " elements for " + this + " of " + numel);
        }
    }

    private void requireDType(DType expected, String what) {
        if (dtype != expected) {
            throw new IllegalStateException(what + " needs a " + expected + " tensor, this is " + this);
        }
    }

    private static MemorySegment createBuffer(Context context, int kind, long bytes, DType dtype, long[] shape) {
        Objects.requireNonNull(context, "context");
        try (Arena call = Arena.ofConfined()) {
            MemorySegment out = call.allocate(ValueLayout.ADDRESS);
            Native.check(CaeNative.cae_buffer_create(context.handle(), kind, Math.max(bytes, 1), out),
                    "allocating a " + dtype + " tensor of shape " + Arrays.toString(shape) + " in " + context);
            return out.get(ValueLayout.ADDRESS, 0);
        }
    }

    private static long[] checkShape(long[] shape) {
        Objects.requireNonNull(shape, "shape");
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
        }
        numel(shape);
        return shape.clone();
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
