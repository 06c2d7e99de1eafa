using System.Text;
using static MiniVmm.Migration.Report.Rendering.ReportFormat;

namespace MiniVmm.Migration.Report.Rendering;

/// <summary>
/// The state timeline: one lane each for the migration's status, the source's run state, the
/// migration phase, every VFIO device's state and the guest harness's PAUSE/RUN, on the same
/// time axis as the other plots, with the switchover and the downtime marked across all lanes.
/// </summary>
internal static class StateTimelinePlot
{
    private const double LaneHeight = 26;
    private const double Top = 34;

    private static readonly Dictionary<string, string> KnownColors = new(StringComparer.Ordinal)
    {
        ["setup"] = "#c7c7c7", ["active"] = "#6baed6", ["device"] = "#fd8d3c", ["pre-switchover"] = "#fdd0a2",
        ["completed"] = "#31a354", ["failed"] = "#de2d26", ["cancelling"] = "#bcbddc", ["cancelled"] = "#9e9ac8",
        ["running"] = "#74c476", ["RUN"] = "#74c476", ["paused"] = "#fdae6b", ["PAUSE"] = "#fdae6b", ["finish-migrate"] = "#fd8d3c",
        ["postmigrate"] = "#9ecae1", ["inmigrate"] = "#c6dbef", ["prelaunch"] = "#dadaeb", ["internal-error"] = "#de2d26",
        ["iteration"] = "#6baed6", ["switchover"] = "#fd8d3c", ["stop"] = "#e6550d", ["pause"] = "#fdd0a2",
        ["device_state"] = "#fdae6b", ["complete"] = "#31a354", ["cleanup"] = "#c7c7c7", ["gone"] = "#de2d26",
        ["stop-copy"] = "#fd8d3c", ["pre-copy"] = "#6baed6", ["pre-copy-p2p"] = "#9ecae1", ["running-p2p"] = "#a1d99b",
        ["resuming"] = "#bcbddc",
    };

    private static readonly string[] Palette = ["#a6cee3", "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7", "#bebada"];

    /// <summary>The svg.</summary>
    public static string Render(ReportPlotData data)
    {
        IReadOnlyList<TimelineLane> lanes = TimelineLane.Of(data.Report.Events);
        TimeAxis time = data.Time;
        double height = Top + (lanes.Count * LaneHeight) + 30;
        double bottom = Top + (lanes.Count * LaneHeight);
        var svg = new StringBuilder();
        svg.Append(Invariant($"<svg class=\"plot\" data-plot=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SvgPlot.Width} {Coordinate(height)}\" role=\"img\" aria-label=\"State timeline\">\n"));
        svg.Append(Invariant($"<text class=\"plot-title\" x=\"{SvgPlot.MarginLeft}\" y=\"18\">Run states, device states and harness PAUSE/RUN</text>\n"));
        if (data.Markers.DowntimeStartMs is { } stop)
        {
            double x1 = time.X(stop);
            double x2 = Math.Max(x1 + 2, time.X(data.Markers.DowntimeEndMs ?? time.EndMs));
            svg.Append(Invariant($"<rect class=\"downtime\" x=\"{Coordinate(x1)}\" y=\"{Top}\" width=\"{Coordinate(x2 - x1)}\" height=\"{Coordinate(bottom - Top)}\"><title>downtime: the VM was stopped</title></rect>\n"));
        }

        for (int i = 0; i < lanes.Count; i++)
        {
            TimelineLane lane = lanes[i];
            double y = Top + (i * LaneHeight);
            svg.Append(Invariant($"<text class=\"lane-label\" x=\"{SvgPlot.MarginLeft - 6}\" y=\"{Coordinate(y + 17)}\" text-anchor=\"end\">{Escape(lane.Label)}</text>"));
            svg.Append(Invariant($"<g class=\"series\" data-series=\"{Escape(lane.Series)}\"><title>{Escape(lane.Label)}</title>"));
            for (int c = 0; c < lane.Changes.Count; c++)
            {
                (long start, string state, string? detail) = lane.Changes[c];
                long end = c + 1 < lane.Changes.Count ? lane.Changes[c + 1].TimeMs : time.EndMs;
                double x1 = time.X(start);
                double x2 = Math.Max(x1 + 1.5, time.X(end));
                string tip = $"{lane.Label}: {state} from {Time(start)} to {Time(end)}{(detail is null ? "" : $" ({detail})")}";
                svg.Append(Invariant($"<rect x=\"{Coordinate(x1)}\" y=\"{Coordinate(y + 3)}\" width=\"{Coordinate(x2 - x1)}\" height=\"{LaneHeight - 6}\" fill=\"{ColorOf(state)}\" stroke=\"#ffffff\" stroke-width=\"0.5\"><title>{Escape(tip)}</title></rect>"));
                if (x2 - x1 >= (state.Length * 6.2) + 6)
                {
                    svg.Append(Invariant($"<text class=\"state\" x=\"{Coordinate(x1 + 3)}\" y=\"{Coordinate(y + 17)}\">{Escape(state)}</text>"));
                }
            }

            svg.Append("</g>\n");
        }

        foreach (double t in time.Ticks())
        {
            double x = time.X(t);
            svg.Append(Invariant($"<line class=\"tickmark\" x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{Coordinate(bottom)}\" y2=\"{Coordinate(bottom + 4)}\"/><text class=\"tick\" x=\"{Coordinate(x)}\" y=\"{Coordinate(bottom + 16)}\" text-anchor=\"middle\">{Escape(Time(t))}</text>\n"));
        }

        if (data.Markers.SwitchoverMs is { } switchover)
        {
            double x = time.X(switchover);
            svg.Append(Invariant($"<g class=\"switchover-marker\"><line x1=\"{Coordinate(x)}\" x2=\"{Coordinate(x)}\" y1=\"{Top - 8}\" y2=\"{Coordinate(bottom)}\"/><text x=\"{Coordinate(x + 4)}\" y=\"{Top - 2}\">switchover</text></g>\n"));
        }

        svg.Append("</svg>");
        return svg.ToString();
    }

    private static string ColorOf(string state) =>
        KnownColors.TryGetValue(state, out string? color) ? color : Palette[(int)((uint)StableHash(state) % (uint)Palette.Length)];

    private static int StableHash(string text)
    {
        int hash = 17;
        foreach (char c in text)
        {
            hash = unchecked((hash * 31) + c);
        }

        return hash;
    }
}
