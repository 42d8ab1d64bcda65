package org.caejava;

import org.caejava.api.Backend;
import org.caejava.api.Context;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A CPU {@link Context} shared by the tests of one class, opened before the first and closed after
 * the last: {@code @RegisterExtension static final CpuContext CPU = new CpuContext(2);} then
 * {@code CPU.get()}.
 */
public final class CpuContext implements BeforeAllCallback, AfterAllCallback {

    private final int threads;
    private Context ctx;

    public CpuContext(int threads) {
        this.threads = threads;
    }

    public Context get() {
        if (ctx == null) {
            throw new IllegalStateException("the context is open only while the test class runs");
        }
        return ctx;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        ctx = Context.builder().backend(Backend.CPU).threads(threads).build();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (ctx != null) {
            ctx.close();
            ctx = null;
        }
    }
}
