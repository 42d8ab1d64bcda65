package org.caejava.data;

/**
 * Image data that cannot be used: a malformed or truncated file, an undecodable image, a shard
 * that fails validation. The message names the file (and the image) and says what was wrong.
 */
public class ImageDataException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ImageDataException(String message) {
        super(message);
    }

    public ImageDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
