namespace MiniVmm.Migration.Savevm;

/// <summary>
/// How much data an entry still has to send: <see cref="MustPrecopy"/> before the destination
/// may start, <see cref="CanPostcopy"/> possibly afterwards (QEMU's must_precopy/can_postcopy).
/// </summary>
public readonly record struct PendingSize(ulong MustPrecopy, ulong CanPostcopy)
{
    /// <summary>Nothing pending.</summary>
    public static PendingSize None => default;

    /// <summary>Both parts together.</summary>
    public ulong Total => MustPrecopy + CanPostcopy;

    /// <summary>Adds two pending sizes.</summary>
    public static PendingSize operator +(PendingSize a, PendingSize b) =>
        new(a.MustPrecopy + b.MustPrecopy, a.CanPostcopy + b.CanPostcopy);
}
