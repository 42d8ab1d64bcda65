package org.caejava.it;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import org.caejava.CaeModel;
import org.caejava.Features;
import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.caejava.io.SafetensorsFile;
import org.caejava.io.SafetensorsWriter;

/**
 * Encodes the images of a batch file with a checkpoint's encoder on a backend and writes the
 * features ('cls' and 'mean', F32 [B, D]) with the context's description in the metadata. Run in
 * its own JVM by {@link EmulatedCudaTest}, whose environment chooses the library.
 *
 * <p>Arguments: CHECKPOINT BATCH OUT cpu|cuda
 */
public final class EncodeFeatures {

    public static void main(String[] args) throws Exception {
        Backend backend = Backend.valueOf(args[3].toUpperCase(java.util.Locale.ROOT));
        try (Context ctx = Context.builder().backend(backend).threads(1).build();
                CaeModel model = CaeModel.load(ctx, Path.of(args[0]));
                SafetensorsFile batch = SafetensorsFile.open(Path.of(args[1]));
                Arena arena = Arena.ofConfined()) {
            Features f = model.encode(batch.tensor("images"), arena);
            new SafetensorsWriter().metadata("backend", ctx.description())
                    .addFloats("cls", f.cls().shape(), f.cls().toFloatArray())
                    .addFloats("mean", f.mean().shape(), f.mean().toFloatArray())
                    .write(Path.of(args[2]));
            System.out.println("encoded on " + ctx.description());
        }
    }

    private EncodeFeatures() {}
}
