using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.VMState;

/// <summary>
/// Saving or loading a device's state through its <see cref="VMStateDescription"/> failed.
/// The message names the description and, where one is involved, the field; the
/// <see cref="MigrationStreamException.Offset"/> is the stream offset where the failure was
/// detected (for a wrapped stream failure, the offset of that inner failure).
/// </summary>
public class VMStateException : MigrationStreamException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went wrong, without the offset (it is appended).</param>
    /// <param name="offset">Stream offset the failure refers to, or −1 when unknown.</param>
    /// <param name="inner">The failure this one wraps, if any.</param>
    /// <param name="descriptionName">Name of the description being saved or loaded.</param>
    /// <param name="fieldName">Name of the field being saved or loaded, if any.</param>
    public VMStateException(
        string message,
        long offset,
        Exception? inner = null,
        string? descriptionName = null,
        string? fieldName = null)
        : base(message, offset, inner)
    {
        DescriptionName = descriptionName;
        FieldName = fieldName;
    }

    /// <summary>Name of the description being saved or loaded, if known.</summary>
    public string? DescriptionName { get; }

    /// <summary>Name of the field being saved or loaded, if the failure concerns one.</summary>
    public string? FieldName { get; }

    /// <summary>
    /// The text of <paramref name="error"/> without its offset: the stream layer's
    /// <see cref="MigrationStreamException.Detail"/> or, for any other exception, its message.
    /// </summary>
    internal static string DetailOf(Exception error) =>
        error is MigrationStreamException streamError ? streamError.Detail : error.Message;

    /// <summary>
    /// The offset to report for a failure wrapping <paramref name="error"/>: the inner
    /// failure's own offset when it has one, else <paramref name="currentOffset"/>.
    /// </summary>
    internal static long OffsetOf(Exception error, long currentOffset) =>
        error is MigrationStreamException { Offset: >= 0 } streamError ? streamError.Offset : currentOffset;
}
