using MiniVmm.Migration.Report.Model;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>
/// One bar of the per-pass plot: a pass, or a run of consecutive passes when there are too many
/// to draw one bar each (near convergence a source can sync every few milliseconds, and a
/// hundred hairline bars say less than a few summed ones).
/// </summary>
/// <param name="FirstPass">The first pass in the group.</param>
/// <param name="LastPass">The last.</param>
/// <param name="StartMs">When the first began.</param>
/// <param name="EndMs">When the last ended.</param>
/// <param name="BytesSent">Their bytes, summed by section kind.</param>
internal sealed record PassGroup(int FirstPass, int LastPass, long StartMs, long EndMs, ReportSectionBytes BytesSent)
{
    /// <summary>The most bars the plot draws.</summary>
    public const int MaxBars = 40;

    /// <summary>The bar's label: <c>3</c> or <c>12–40</c>.</summary>
    public string Label => FirstPass == LastPass ? ReportFormat.Number(FirstPass) : $"{FirstPass}–{LastPass}";

    /// <summary>Whether <paramref name="pass"/> is in the group.</summary>
    public bool Contains(int pass) => pass >= FirstPass && pass <= LastPass;

    /// <summary>Groups <paramref name="passes"/> into at most <see cref="MaxBars"/> runs of equal length (the last may be shorter).</summary>
    public static IReadOnlyList<PassGroup> Of(IReadOnlyList<ReportPass> passes)
    {
        int size = Math.Max(1, (passes.Count + MaxBars - 1) / MaxBars);
        var groups = new List<PassGroup>();
        for (int start = 0; start < passes.Count; start += size)
        {
            IReadOnlyList<ReportPass> run = [.. passes.Skip(start).Take(size)];
            groups.Add(new PassGroup(
                run[0].Pass, run[^1].Pass, run[0].StartMs, run[^1].EndMs,
                new ReportSectionBytes(run.Sum(p => p.BytesSent.Ram), run.Sum(p => p.BytesSent.Vfio), run.Sum(p => p.BytesSent.Harness), run.Sum(p => p.BytesSent.Other))));
        }

        return groups;
    }
}
