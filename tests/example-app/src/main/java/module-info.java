/** The example application, run on the module path: it needs only the org.caejava module. */
module com.example.caeapp {
    requires org.caejava;
}
