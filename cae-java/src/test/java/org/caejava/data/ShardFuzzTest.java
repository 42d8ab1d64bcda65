package org.caejava.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.flatbuffers.FlatBufferBuilder;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.caejava.data.shard.Shard;
import org.caejava.io.FuzzCampaign;
import org.caejava.io.Mutator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Generative test of {@link ShardSource} (and {@link ShardIndex}, {@link FlatBufferCheck}):
 * mutations of prepared datasets written by {@link ShardWriter}, one file per try: a shard
 * (byte-level, or FlatBuffers-aware: the root offset, the table's vtable offset, the vtable's
 * sizes and field slots, the vector and string offsets and lengths, the scalar fields), optionally
 * with the index's byte count fixed up so the shard's content is what gets checked, or
 * {@code index.json} (byte-level, or JSON-aware: sizes, counts, file names, class names,
 * statistics). Each either opens, and then every image is a full-size view and every label is in
 * range, or is refused with an {@link ImageDataException} naming the dataset.
 */
class ShardFuzzTest {

    static final int TRIES = 2000;
    static final long SEED = 0x5AA2D_CAE5L;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final String[] FIELDS = {"format_version", "split", "first_index", "count", "width", "height",
        "channels", "class_names", "labels", "images"};

    @TempDir
    Path tmp;

    /** A dataset: its folder and the bytes of each of its files, to restore after each try. */
    private record Dataset(Path dir, Map<String, byte[]> files) {
        void restore(String name) throws IOException {
            Files.write(dir.resolve(name), files.get(name));
        }
    }

    /**
     * Two datasets: 5x4 RGB images in three classes, three per shard (a train split of 7, a test
     * split of 2); and unlabeled 64x64 RGB images, six per shard (73 KB, large enough for 16-bit
     * vtable entries of 0x8000 and more to point inside the file).
     */
    private List<Dataset> datasets() throws IOException {
        List<Dataset> out = new ArrayList<>();
        int[][] sizes = {{5, 4, 3}, {64, 64, 3}};
        for (int d = 0; d < 2; d++) {
            int w = sizes[d][0];
            int h = sizes[d][1];
            int c = sizes[d][2];
            List<String> classes = d == 0 ? List.of("cat", "dog", "émeu") : List.of();
            int perShard = d == 0 ? 3 : 6;
            Path dir = tmp.resolve("dataset" + d);
            long shardBytes = 4096 + 3 * 16 + perShard * ((long) w * h * c + 4) + 10;
            try (ShardWriter writer = ShardWriter.create(dir, w, h, c, classes, shardBytes)) {
                writer.normalization(new Normalization(new float[] {0.1f, 0.2f, 0.3f}, new float[] {0.4f, 0.5f, 0.6f}));
                writer.writeSplit("train", d == 0 ? 7 : 8, (i, dst) -> {
                    dst.fill((byte) (i * 17));
                    return classes.isEmpty() ? -1 : (int) (i % 3);
                }, 1);
                writer.writeSplit("test", 2, (i, dst) -> {
                    dst.fill((byte) i);
                    return classes.isEmpty() ? -1 : 2;
                }, 1);
            }
            Map<String, byte[]> files = new LinkedHashMap<>();
            try (Stream<Path> s = Files.list(dir)) {
                for (Path p : s.sorted().toList()) {
                    files.put(p.getFileName().toString(), Files.readAllBytes(p));
                }
            }
            out.add(new Dataset(dir, files));
        }
        return out;
    }

    /** A place in a shard that the reader follows or checks, and its width in bytes. */
    private record Spot(String name, int at, int width) {}

    /** The offsets, sizes and fields of a valid shard, found the way the reader finds them. */
    static List<Spot> spots(byte[] shard) {
        ByteBuffer b = ByteBuffer.wrap(shard).order(ByteOrder.LITTLE_ENDIAN);
        List<Spot> s = new ArrayList<>();
        s.add(new Spot("root offset", 0, 4));
        s.add(new Spot("identifier", 4, 4));
        int table = b.getInt(0);
        s.add(new Spot("vtable offset", table, 4));
        int vtable = table - b.getInt(table);
        s.add(new Spot("vtable size", vtable, 2));
        s.add(new Spot("table size", vtable + 2, 2));
        int vsize = b.getShort(vtable) & 0xFFFF;
        for (int k = 0; k < FIELDS.length && 4 + 2 * k < vsize; k++) {
            s.add(new Spot("slot of " + FIELDS[k], vtable + 4 + 2 * k, 2));
            int off = b.getShort(vtable + 4 + 2 * k) & 0xFFFF;
            if (off == 0) {
                continue;
            }
            int field = table + off;
            s.add(new Spot(FIELDS[k], field, k == 2 ? 8 : 4));
            if (k == 1 || k >= 7) {
                int start = field + b.getInt(field);
                s.add(new Spot("length of " + FIELDS[k], start, 4));
                if (k == 7) {
                    for (int i = 0; i < b.getInt(start); i++) {
                        int element = start + 4 + 4 * i;
                        s.add(new Spot("offset of class name " + i, element, 4));
                        s.add(new Spot("length of class name " + i, element + b.getInt(element), 4));
                    }
                }
            }
        }
        return s;
    }

    private static byte[] flatBufferMutation(byte[] shard, Random random, Mutator m) {
        List<Spot> spots = spots(shard);
        Spot spot = spots.get(random.nextInt(spots.size()));
        ByteBuffer b = ByteBuffer.wrap(shard).order(ByteOrder.LITTLE_ENDIAN);
        long old = spot.width() == 2 ? b.getShort(spot.at()) & 0xFFFF
                : spot.width() == 4 ? b.getInt(spot.at()) & 0xFFFFFFFFL : b.getLong(spot.at());
        long v = switch (random.nextInt(6)) {
            case 0 -> m.edge();
            case 1 -> old + random.nextInt(17) - 8;
            case 2 -> old + 4L * (random.nextInt(9) - 4);
            // 16-bit vtable entries of 2^15 and more, even, and offsets anywhere in the file.
            case 3 -> spot.width() == 2 ? 0x8000 + 2 * random.nextInt(0x4000) : random.nextInt(shard.length + 8);
            case 4 -> 0;
            default -> old ^ (1L << random.nextInt(8 * spot.width()));
        };
        m.note(spot.name() + " " + old + " -> " + v + ":");
        return m.integer(shard, spot.at(), spot.width(), ByteOrder.LITTLE_ENDIAN, v);
    }

    private static JsonNode someValue(Random random, Mutator m) {
        return switch (random.nextInt(9)) {
            case 0 -> NODES.numberNode(m.edge());
            case 1 -> NODES.numberNode(0);
            case 2 -> NODES.numberNode(-1);
            case 3 -> NODES.numberNode(2.5);
            case 4 -> NODES.textNode("4");
            case 5 -> NODES.nullNode();
            case 6 -> NODES.arrayNode();
            case 7 -> NODES.numberNode(1 << 16);
            default -> NODES.numberNode(random.nextInt(10));
        };
    }

    private static byte[] indexMutation(byte[] index, Random random, Mutator m) throws IOException {
        ObjectNode root = (ObjectNode) JSON.readTree(index);
        ObjectNode splits = (ObjectNode) root.get("splits");
        ArrayNode train = (ArrayNode) splits.get("train");
        ObjectNode shard = (ObjectNode) train.get(random.nextInt(train.size()));
        switch (random.nextInt(10)) {
            case 0, 1 -> {
                String f = List.of("width", "height", "channels", "version").get(random.nextInt(4));
                JsonNode v = someValue(random, m);
                root.set(f, v);
                m.note(f + " = " + v);
            }
            case 2, 3 -> {
                String f = List.of("count", "bytes", "file").get(random.nextInt(3));
                JsonNode v = f.equals("file") ? NODES.textNode(List.of("../index.json", "shard-1.fb", "shard-00000.fb",
                        "shard-99999.fb", "shard-00001.fb", "/etc/passwd", "shard-00000.fb/..").get(random.nextInt(7)))
                        : random.nextBoolean() ? NODES.numberNode(shard.get(f).asLong() + random.nextInt(9) - 4)
                                : someValue(random, m);
                shard.set(f, v);
                m.note("a train shard's " + f + " = " + v);
            }
            case 4 -> {
                ArrayNode names = (ArrayNode) root.get("class_names");
                switch (random.nextInt(4)) {
                    case 0 -> names.add("extra");
                    case 1 -> names.removeAll();
                    case 2 -> names.add(3);
                    default -> root.put("class_names", "cat");
                }
                m.note("class_names = " + root.get("class_names"));
            }
            case 5 -> {
                ObjectNode n = (ObjectNode) root.get("normalization");
                String f = random.nextBoolean() ? "mean" : "std";
                JsonNode v = switch (random.nextInt(5)) {
                    case 0 -> NODES.arrayNode().add(0.5);
                    case 1 -> NODES.arrayNode().add(0).add(0).add(0);
                    case 2 -> NODES.arrayNode().add("x").add(1).add(1);
                    case 3 -> NODES.arrayNode().add(-1).add(1e40).add(1);
                    default -> NODES.textNode("NaN");
                };
                n.set(f, v);
                m.note("normalization." + f + " = " + v);
            }
            case 6 -> {
                switch (random.nextInt(5)) {
                    case 0 -> splits.removeAll();
                    case 1 -> splits.set("train", NODES.arrayNode());
                    case 2 -> splits.put("train", "shard-00000.fb");
                    case 3 -> train.add(train.get(0));
                    default -> train.remove(0);
                }
                m.note("splits = " + splits);
            }
            case 7 -> {
                root.put(random.nextBoolean() ? "format" : "info", random.nextBoolean() ? "x" : null);
                m.note("format or info changed");
            }
            case 8 -> {
                // The test split's shards listed for training too: first indices disagree.
                ArrayNode test = (ArrayNode) splits.get("test");
                train.add(test.get(0));
                m.note("the test shard appended to train");
            }
            default -> {
                m.note("index = []");
                return "[]".getBytes();
            }
        }
        return JSON.writeValueAsBytes(root);
    }

    /** The index with shard {@code name}'s byte count set to {@code bytes}. */
    private static byte[] withBytes(byte[] index, String name, long bytes) throws IOException {
        JsonNode root = JSON.readTree(index);
        for (JsonNode split : root.get("splits")) {
            for (JsonNode shard : split) {
                if (shard.get("file").asText().equals(name)) {
                    ((ObjectNode) shard).put("bytes", bytes);
                }
            }
        }
        return JSON.writeValueAsBytes(root);
    }

    @Test
    void mutatedShardsOpenConsistentlyOrAreRefused() throws IOException {
        List<Dataset> datasets = datasets();
        try (FuzzCampaign c = new FuzzCampaign("ShardSource.open", SEED, List.of(ImageDataException.class), 5_000,
                16L << 20, 256L << 20)) {
            Random random = c.random();
            Mutator m = new Mutator(random);
            for (int i = 0; i < TRIES; i++) {
                Dataset ds = datasets.get(random.nextInt(datasets.size()));
                List<String> shards = ds.files().keySet().stream().filter(n -> n.endsWith(".fb")).toList();
                boolean index = random.nextInt(4) == 0;
                String name = index ? ShardIndex.FILE : shards.get(random.nextInt(shards.size()));
                byte[] original = ds.files().get(name);
                byte[] mutated;
                if (index) {
                    mutated = random.nextBoolean() ? m.any(original) : indexMutation(original, random, m);
                } else {
                    mutated = switch (random.nextInt(4)) {
                        case 0 -> m.any(original);
                        case 1 -> m.within(original, 0, Math.min(original.length, 256));
                        default -> flatBufferMutation(original, random, m);
                    };
                    if (mutated.length != original.length && random.nextBoolean()) {
                        Files.write(ds.dir().resolve(ShardIndex.FILE),
                                withBytes(ds.files().get(ShardIndex.FILE), name, mutated.length));
                        m.note("(index fixed up)");
                    }
                }
                Files.write(ds.dir().resolve(name), mutated);
                String split = random.nextInt(4) == 0 ? "test" : "train";
                c.attempt(m.description() + " in " + ds.dir().getFileName() + "/" + name + ", split " + split,
                        ds.dir(), mutated, () -> {
                            try (ShardSource s = ShardSource.open(ds.dir(), split)) {
                                checkConsistent(s);
                            }
                        });
                ds.restore(name);
                ds.restore(ShardIndex.FILE);
            }
            c.finish();
        }
    }

    /**
     * flatbuffers-java reads a vtable's size as a signed 16-bit number: with 2^15 or more the
     * generated accessors saw no fields, and opening threw a NullPointerException (found by the fuzz
     * test, try 1800 of seed 24329964261). The shard must be over 32 KB for such a vtable to fit.
     */
    @Test
    void vtableSizesOf32768AndMoreAreRefused() throws IOException {
        Dataset ds = datasets().get(1);
        String name = "shard-00000.fb";
        byte[] shard = ds.files().get(name).clone();
        ByteBuffer b = ByteBuffer.wrap(shard).order(ByteOrder.LITTLE_ENDIAN);
        int vtable = b.getInt(0) - b.getInt(b.getInt(0));
        b.putShort(vtable, (short) 0x8000);
        Files.write(ds.dir().resolve(name), shard);
        ImageDataException e = assertThrows(ImageDataException.class, () -> ShardSource.open(ds.dir(), "train"));
        assertEquals(ds.dir().resolve(name) + ": corrupt shard, the vtable of the root table has size 32768, expected "
                + "an even size from 4 to 32767 inside the buffer", e.getMessage());
    }

    /**
     * Found by review: 2000 class-name offsets all pointing at one 32 KB string made the check decode
     * 64 MB of strings from a 40 KB shard. Decoding stops once the strings exceed the buffer.
     */
    @Test
    void classNamesThatAllShareOneLongStringAreRefusedBeforeDecodingThem() throws IOException {
        FlatBufferBuilder b = new FlatBufferBuilder(1 << 16);
        int images = Shard.createImagesVector(b, new byte[3]);
        int name = b.createString("n".repeat(32 << 10));
        int[] same = new int[2000];
        Arrays.fill(same, name);
        int names = Shard.createClassNamesVector(b, same);
        int split = b.createString("train");
        Shard.finishShardBuffer(b, Shard.createShard(b, ShardWriter.FORMAT_VERSION, split, 0, 1, 1, 1, 3, names, 0,
                images));
        byte[] shard = b.sizedByteArray();
        Path dir = Files.createDirectories(tmp.resolve("shared"));
        Files.write(dir.resolve("shard-00000.fb"), shard);
        Files.writeString(dir.resolve(ShardIndex.FILE), "{\"format\": \"cae-java/shards\", \"version\": 1, "
                + "\"width\": 1, \"height\": 1, \"channels\": 3, \"class_names\": [], \"splits\": {\"train\": "
                + "[{\"file\": \"shard-00000.fb\", \"count\": 1, \"bytes\": " + shard.length + "}]}}");
        ImageDataException e = assertThrows(ImageDataException.class, () -> ShardSource.open(dir, "train"));
        assertEquals(dir.resolve("shard-00000.fb") + ": corrupt shard, the 2000 strings of class name overlap: the "
                + "first 2 hold more than the buffer's " + shard.length + " bytes", e.getMessage());
    }

    /**
     * Found by review, out of reach of random mutations: 1995812906 images of 64333x47890x3 need
     * 2^64 + 44 bytes, which wraps to the 44 bytes of this shard's images vector.
     */
    @Test
    void imageCountTimesSizeThatWrapsTo64BitsIsRefused() throws IOException {
        long count = 1_995_812_906L;
        int width = 64_333;
        int height = 47_890;
        FlatBufferBuilder b = new FlatBufferBuilder(256);
        int images = Shard.createImagesVector(b, new byte[44]);
        int names = Shard.createClassNamesVector(b, new int[0]);
        int split = b.createString("train");
        Shard.finishShardBuffer(b, Shard.createShard(b, ShardWriter.FORMAT_VERSION, split, 0, count, width, height, 3,
                names, 0, images));
        byte[] shard = b.sizedByteArray();
        Path dir = Files.createDirectories(tmp.resolve("wrapping"));
        Files.write(dir.resolve("shard-00000.fb"), shard);
        Files.writeString(dir.resolve(ShardIndex.FILE), String.format("{\"format\": \"cae-java/shards\", "
                + "\"version\": 1, \"width\": %d, \"height\": %d, \"channels\": 3, \"class_names\": [], "
                + "\"splits\": {\"train\": [{\"file\": \"shard-00000.fb\", \"count\": %d, \"bytes\": %d}]}}",
                width, height, count, shard.length));
        ImageDataException e = assertThrows(ImageDataException.class, () -> ShardSource.open(dir, "train"));
        assertTrue(e.getMessage().contains("shard-00000.fb: the images vector holds 44 bytes, 1995812906 images of "
                + "64333x47890x3 need 18446744073709551660"), e.getMessage());
    }

    /** An open split: every image a full-size view, reads equal to views, labels in range. */
    private static void checkConsistent(ShardSource s) {
        long bytes = s.byteSize(0);
        assertEquals((long) s.width(0) * s.height(0) * s.channels(), bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment dst = arena.allocate(bytes);
            for (long i = 0; i < s.size(); i++) {
                MemorySegment view = s.view(i);
                assertEquals(bytes, view.byteSize());
                s.read(i, dst);
                assertArrayEquals(view.toArray(ValueLayout.JAVA_BYTE), dst.toArray(ValueLayout.JAVA_BYTE));
                int label = s.label(i);
                assertTrue(label >= -1 && label < s.classNames().size(), "label " + label);
                assertTrue(s.describe(i).contains("shard-"), s.describe(i));
            }
        }
    }
}
