package org.caejava.it;

import java.lang.foreign.Arena;
import org.caejava.CaeConfig;
import org.caejava.CaeModel;
import org.caejava.CaeTrainer;
import org.caejava.api.Context;
import org.caejava.api.DType;
import org.caejava.api.Tensor;
import org.caejava.data.TensorDataset;

/**
 * Trains a tiny model for a few steps in {@code Context.create()}, as a library user would, and
 * prints where the context and the model computed: "context: DESCRIPTION" and "model: DESCRIPTION".
 * Run in its own JVM by {@link EmulatedCudaTest}, whose environment chooses the library.
 */
public final class TrainOnDefaultContext {

    public static void main(String[] args) {
        CaeConfig config = CaeConfig.preset("fmnist-tiny").toBuilder().patchSize(7).embedDim(32).depth(1).numHeads(2)
                .regressorDepth(1).decoderDepth(1).decoderNumHeads(2).build();
        try (Context ctx = Context.create(); Arena arena = Arena.ofConfined()) {
            Tensor images = Tensor.allocate(arena, DType.F32, 8, 1, 28, 28);
            for (int i = 0; i < 8; i++) {
                for (int p = 0; p < 28 * 28; p++) {
                    images.setFloat((p + 37 * i) % 11 / 5f - 1f, i, 0, p / 28, p % 28);
                }
            }
            System.out.println("context: " + ctx.description());
            try (CaeModel model = CaeTrainer.builder().context(ctx).config(config).data(TensorDataset.of(images))
                    .steps(2).batchSize(4).seed(3).build().fit()) {
                System.out.println("model: " + model.context().description());
            }
        }
    }

    private TrainOnDefaultContext() {}
}
