/** The jextract-generated bindings of libcae's C ABI ({@code cae.h}), for {@code org.caejava.api} only. */
module org.caejava.bindings {
    exports org.caejava.bindings to org.caejava.api;
}
