using MiniVmm.Migration.Stream;

namespace MiniVmm.Migration.Stall;

/// <summary>
/// A migration failed because it made no progress for <c>x-stall-timeout</c> milliseconds.
/// <see cref="Kind"/> says which side stalled; <see cref="MigrationStreamException.Offset"/> is
/// the stream offset this side had reached (written by the source, read by the destination).
/// </summary>
public sealed class MigrationStalledException : MigrationStreamException
{
    /// <summary>Creates the error for a stall of <paramref name="kind"/> noticed at <paramref name="offset"/>.</summary>
    /// <param name="kind">The side that stopped.</param>
    /// <param name="offset">The stream offset this side had reached.</param>
    /// <param name="idleMilliseconds">How long nothing moved.</param>
    /// <param name="detail">What was measured and what this side was doing (e.g. "TCP bytes acked stayed at 123").</param>
    public MigrationStalledException(StallKind kind, long offset, long idleMilliseconds, string detail)
        : base(detail, offset, null, Describe(kind, offset, idleMilliseconds, detail))
    {
        Kind = kind;
        IdleMilliseconds = idleMilliseconds;
    }

    /// <summary>Which side stalled.</summary>
    public StallKind Kind { get; }

    /// <summary>How long nothing moved before the migration was failed, in milliseconds.</summary>
    public long IdleMilliseconds { get; }

    private static string Describe(StallKind kind, long offset, long idle, string detail)
    {
        string who = kind == StallKind.Destination
            ? "the destination stopped taking the migration stream"
            : "the source stopped sending the migration stream";
        return $"migration stalled: {who} (no progress for {idle} ms, x-stall-timeout) at stream offset {offset} (0x{offset:x}); {detail}";
    }
}
