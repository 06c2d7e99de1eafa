namespace MiniVmm.Migration.Report.Model;

/// <summary>One pass, from one dirty-bitmap sync to the next (or to the switchover).</summary>
/// <param name="Pass">The pass number.</param>
/// <param name="StartMs">When it started.</param>
/// <param name="EndMs">When it ended.</param>
/// <param name="BytesSent">Stream bytes sent during it, by section kind.</param>
/// <param name="PendingBytesAtEnd">What was left to send when it ended.</param>
/// <param name="DirtyPagesRate">The dirty rate when it ended (pages per second).</param>
public sealed record ReportPass(int Pass, long StartMs, long EndMs, ReportSectionBytes BytesSent, long PendingBytesAtEnd, long DirtyPagesRate);
