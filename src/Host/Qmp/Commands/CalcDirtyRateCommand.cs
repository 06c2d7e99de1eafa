using System.Text.Json.Nodes;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary><c>calc-dirty-rate {calc-time, sample-pages?, mode?}</c>: starts measuring how fast the guest dirties memory.</summary>
public sealed class CalcDirtyRateCommand(DirtyRateMeasurements measurements) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "calc-dirty-rate";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } =
    [
        new("calc-time", QmpParameterType.Integer),
        new("sample-pages", QmpParameterType.Integer, Optional: true),
        new("mode", QmpParameterType.String, Optional: true),
    ];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        measurements.Start(arguments["calc-time"]!.GetValue<long>(), arguments["sample-pages"]?.GetValue<long>() ?? 512);
        return null;
    }
}
