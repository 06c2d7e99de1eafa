using System.Text.Json;
using System.Text.Json.Nodes;
using MiniVmm.Host.CommandLine;
using MiniVmm.Host.Objects;
using MiniVmm.Migration.Transport.Tls;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>object-add {qom-type, id, ...}</c> with QEMU 7.2's flat arguments: MiniVmm creates
/// <c>tls-creds-x509</c> objects (<c>dir</c>, <c>endpoint</c>, <c>verify-peer</c>), loaded at once.
/// </summary>
public sealed class ObjectAddCommand(TlsObjectTable objects) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "object-add";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } =
    [
        new("qom-type", QmpParameterType.String),
        new("id", QmpParameterType.String),
        new("dir", QmpParameterType.String, Optional: true),
        new("endpoint", QmpParameterType.String, Optional: true),
        new("verify-peer", QmpParameterType.Boolean, Optional: true),
    ];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string type = arguments["qom-type"]!.GetValue<string>();
        if (type != TlsCredentialsSpec.QomType)
        {
            throw new QmpException($"Parameter 'qom-type' does not accept value '{type}' (MiniVmm knows only {TlsCredentialsSpec.QomType})");
        }

        var properties = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach ((string name, JsonNode? value) in arguments)
        {
            if (name != "qom-type" && value is not null)
            {
                properties[name] = value.GetValueKind() switch
                {
                    JsonValueKind.True => "on",
                    JsonValueKind.False => "off",
                    _ => value.GetValue<string>(),
                };
            }
        }

        try
        {
            objects.Add(VmOptionsParser.TlsCredentials(arguments.ToJsonString(), properties));
        }
        catch (Exception error) when (error is ArgumentException or TlsCredentialsException)
        {
            throw new QmpException(error.Message);
        }

        return null;
    }
}
