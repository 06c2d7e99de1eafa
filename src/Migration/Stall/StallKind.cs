namespace MiniVmm.Migration.Stall;

/// <summary>Which side of a migration stopped making progress, as the side that noticed sees it.</summary>
public enum StallKind
{
    /// <summary>
    /// Seen by the source: the destination stopped taking the stream (its kernel acked no new
    /// bytes, or writes stayed blocked), or stopped answering on the return path.
    /// </summary>
    Destination,

    /// <summary>Seen by the destination: the source stopped sending the stream.</summary>
    Source,
}
