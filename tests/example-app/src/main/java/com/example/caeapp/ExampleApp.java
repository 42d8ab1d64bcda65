package com.example.caeapp;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CaeTrainer;
import org.caejava.Features;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;

/**
 * Pretrains a small CAE encoder on the application's own images (an off-heap tensor), saves it,
 * and encodes images to features: what a Java team's code does with the library.
 */
public final class ExampleApp {

    public static void main(String[] args) throws Exception {
        CaeConfig config = CaeConfig.preset("fmnist-tiny").toBuilder().embedDim(64).depth(2).numHeads(4)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(4).build();
        try (Context ctx = Context.create(); Arena arena = Arena.ofConfined()) {
            // 128 synthetic 28x28 images: a bright bar whose position and direction depend on the image.
            int n = 128;
            Tensor images = Tensor.allocate(arena, DType.F32, n, 1, 28, 28);
            for (int i = 0; i < n; i++) {
                int at = 4 + (i * 7) % 20;
                boolean across = i % 2 == 0;
                for (int r = 0; r < 28; r++) {
                    for (int c = 0; c < 28; c++) {
                        boolean bar = across ? Math.abs(r - at) < 2 : Math.abs(c - at) < 2;
                        images.setFloat(bar ? 2f : -0.5f, i, 0, r, c);
                    }
                }
            }
            float[] losses = new float[2];
            try (CaeModel model = CaeTrainer.builder().context(ctx).config(config).data(TensorDataset.of(images))
                    .steps(8).batchSize(32).learningRate(1e-3).seed(7)
                    .listener(m -> losses[m.step() == 1 ? 0 : 1] = m.loss()).build().fit()) {
                Path saved = Files.createTempFile("example-cae", ".safetensors");
                model.save(saved);
                Features f = model.encode(images.slice(0, 8), arena);
                System.out.printf("example: %s; trained 8 steps, loss %.4f -> %.4f; saved %d bytes; encoded 8 images "
                        + "into cls %s and mean %s features%n", ctx.description(), losses[0], losses[1],
                        Files.size(saved), java.util.Arrays.toString(f.cls().shape()),
                        java.util.Arrays.toString(f.mean().shape()));
                Files.delete(saved);
                Module lib = CaeTrainer.class.getModule();
                System.out.println("example: the library ran " + (lib.isNamed() ? "on the module path, as module "
                        + lib.getName() : "on the class path"));
            }
        }
    }

    private ExampleApp() {}
}
