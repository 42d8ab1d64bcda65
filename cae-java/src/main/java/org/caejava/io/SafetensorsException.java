package org.caejava.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file that cannot be read: names the file and what is wrong with it. */
public class SafetensorsException extends IOException {

    private static final long serialVersionUID = 1L;

    public SafetensorsException(Path file, String problem) {
        super(file + ": " + problem);
    }

    /** A refusal whose {@code message} already names the file. */
    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
    }
}
