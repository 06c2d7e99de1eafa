using System.Text.Json.Nodes;
using MiniVmm.Native;

namespace MiniVmm.Host.Qmp.Commands;

/// <summary>
/// <c>getfd {fdname}</c>: takes the file descriptor the client passed with this command
/// (SCM_RIGHTS) and keeps it under <c>fdname</c>, closing one kept earlier under that name.
/// </summary>
public sealed class GetfdCommand(PassedDescriptorTable table) : IQmpCommand
{
    /// <inheritdoc/>
    public string Name => "getfd";

    /// <inheritdoc/>
    public IReadOnlyList<QmpParameter> Parameters { get; } = [new("fdname", QmpParameterType.String)];

    /// <inheritdoc/>
    public JsonNode? Execute(JsonObject arguments, QmpContext context)
    {
        string name = arguments["fdname"]!.GetValue<string>();
        FileDescriptorHandle descriptor = context.Session.TakeReceivedDescriptor()
            ?? throw new QmpException("No file descriptor supplied via SCM_RIGHTS");
        if (name.Length > 0 && char.IsAsciiDigit(name[0]))
        {
            descriptor.Dispose();
            throw new QmpException("Parameter 'fdname' expects a name not starting with a digit");
        }

        table.Add(name, descriptor);
        return null;
    }
}
