/**
 * libcae from Java: loading the native library (packed in this module), contexts, off-heap
 * tensors, the native model, communicators. Run with {@code --enable-native-access=org.caejava.api,
 * org.caejava.bindings} on the module path.
 */
module org.caejava.api {
    requires org.caejava.bindings;

    exports org.caejava.api;
}
