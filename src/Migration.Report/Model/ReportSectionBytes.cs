namespace MiniVmm.Migration.Report.Model;

/// <summary>Stream bytes by section kind (see docs/diagnostics.md).</summary>
/// <param name="Ram">The <c>ram</c> section.</param>
/// <param name="Vfio">VFIO device sections.</param>
/// <param name="Harness">The guest harness's section.</param>
/// <param name="Other">Every other device and the stream's framing.</param>
public sealed record ReportSectionBytes(long Ram, long Vfio, long Harness, long Other)
{
    /// <summary>All of them.</summary>
    public long Total => Ram + Vfio + Harness + Other;
}
