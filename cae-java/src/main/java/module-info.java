/**
 * CAE pretraining on top of {@code org.caejava.api}: configurations, models, the trainer, data
 * sources, evaluation, reports and the command line.
 */
module org.caejava {
    requires transitive org.caejava.api;
    requires transitive java.desktop;
    requires com.fasterxml.jackson.databind;
    requires info.picocli;
    requires flatbuffers.java;

    exports org.caejava;
    exports org.caejava.check;
    exports org.caejava.cli;
    exports org.caejava.data;
    exports org.caejava.data.shard;
    exports org.caejava.eval;
    exports org.caejava.io;
    exports org.caejava.mask;
    exports org.caejava.report;
    exports org.caejava.train;

    // picocli reads and sets the commands' annotated fields reflectively.
    opens org.caejava.cli to info.picocli;
}
