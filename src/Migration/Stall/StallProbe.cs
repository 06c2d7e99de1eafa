namespace MiniVmm.Migration.Stall;

/// <summary>
/// One look at a migration's progress for <see cref="StallWatchdog"/>.
/// </summary>
/// <param name="Progress">A counter that grows while the migration moves (bytes acked, written or read).</param>
/// <param name="Waiting">
/// Whether this side is waiting on its peer. False while it is quiet by its own choice (e.g. paused
/// in <c>pre-switchover</c>, or everything it wrote was acked and it has nothing more in flight):
/// the stall clock restarts.
/// </param>
/// <param name="Offset">The stream offset to report if this look ends in a stall.</param>
/// <param name="Detail">What was measured, for the error message.</param>
public readonly record struct StallProbe(long Progress, bool Waiting, long Offset, string Detail);
