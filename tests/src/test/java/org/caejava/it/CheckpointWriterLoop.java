package org.caejava.it;

import java.nio.file.Path;
import java.util.Arrays;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.api.Backend;
import org.caejava.api.Context;

/**
 * Writes a checkpoint over and over, each one marked: the mask token holds the iteration number
 * and so does nothing else, so a reader can tell a whole file from a mixed one. Prints
 * "saved N" after each write returns. Run in its own JVM by {@link CrashSafetyTest}, which kills it.
 */
public final class CheckpointWriterLoop {

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        CaeConfig config = CaeConfig.preset("fmnist-small");
        try (Context ctx = Context.builder().backend(Backend.CPU).threads(1).build();
                CaeModel model = CaeModel.create(ctx, config, 1)) {
            float[] token = new float[config.embedDim()];
            for (int i = 1; ; i++) {
                Arrays.fill(token, i);
                model.setParameter("mask_token", token);
                model.save(file);
                System.out.println("saved " + i);
                System.out.flush();
            }
        }
    }

    private CheckpointWriterLoop() {}
}
