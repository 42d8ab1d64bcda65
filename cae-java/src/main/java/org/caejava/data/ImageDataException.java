package org.caejava.data;

/**
 * Image data that cannot be used: a malformed or truncated file, an undecodable image, a shard
 * that fails validation. The message names the file (and the image) and says what was wrong.
 * Owns nothing; safe to read from any thread.
 */
public class ImageDataException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    /**
     * An exception with a message.
     *
     * @param message what was wrong, naming the file and the image
     */
    public ImageDataException(String message) {
        super(message);
    }

    /**
     * An exception with a message and the failure that caused it.
     *
     * @param message what was wrong, naming the file and the image
     * @param cause the underlying failure
     */
    public ImageDataException(String message, Throwable cause) {
        super(message, cause);
    }
}
