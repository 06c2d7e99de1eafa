namespace MiniVmm.Host.Qmp;

/// <summary>One parameter of a QMP command, as its schema declares it.</summary>
/// <param name="Name">The member name in <c>arguments</c>.</param>
/// <param name="Type">The JSON type it takes.</param>
/// <param name="Optional">Whether it may be left out.</param>
public sealed record QmpParameter(string Name, QmpParameterType Type, bool Optional = false)
{
    /// <summary>The type's name as QEMU's error messages spell it.</summary>
    public string TypeName => Type switch
    {
        QmpParameterType.String => "string",
        QmpParameterType.Integer => "integer",
        QmpParameterType.Number => "number",
        QmpParameterType.Boolean => "boolean",
        QmpParameterType.Object => "object",
        QmpParameterType.Array => "array",
        _ => "any",
    };
}
