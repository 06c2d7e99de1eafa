namespace MiniVmm.Migration.Report.Model;

/// <summary>One more row of the summary table, from whoever ran the migration (a demo's checks).</summary>
/// <param name="Label">What the row is.</param>
/// <param name="Value">Its value, as text.</param>
/// <param name="Passed">True or false for a check that passed or failed; null for plain information.</param>
public sealed record ReportNote(string Label, string Value, bool? Passed = null);
