namespace MiniVmm.Host.Qmp;

/// <summary>
/// The protocol state of one QMP client: whether capabilities negotiation is complete. Until it
/// is, only <c>qmp_capabilities</c> is accepted and no event is sent.
/// </summary>
public sealed class QmpSession
{
    private volatile bool _negotiated;

    /// <summary>Whether <c>qmp_capabilities</c> has succeeded on this session.</summary>
    public bool IsNegotiated => _negotiated;

    /// <summary>Leaves capabilities negotiation mode.</summary>
    public void CompleteNegotiation() => _negotiated = true;
}
