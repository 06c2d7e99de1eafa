namespace MiniVmm.Host.Qmp;

/// <summary>The error classes QMP reports in <c>{"error": {"class": ...}}</c>.</summary>
public enum QmpErrorClass
{
    /// <summary><c>GenericError</c>: every error without a more specific class.</summary>
    GenericError,

    /// <summary><c>CommandNotFound</c>: the command does not exist (or not in this mode).</summary>
    CommandNotFound,

    /// <summary><c>DeviceNotActive</c>.</summary>
    DeviceNotActive,

    /// <summary><c>DeviceNotFound</c>.</summary>
    DeviceNotFound,
}

/// <summary>Wire names of <see cref="QmpErrorClass"/>.</summary>
public static class QmpErrorClassNames
{
    /// <summary>The name QMP puts in <c>class</c>.</summary>
    public static string ToWireName(this QmpErrorClass errorClass) => errorClass switch
    {
        QmpErrorClass.GenericError => "GenericError",
        QmpErrorClass.CommandNotFound => "CommandNotFound",
        QmpErrorClass.DeviceNotActive => "DeviceNotActive",
        QmpErrorClass.DeviceNotFound => "DeviceNotFound",
        _ => throw new ArgumentOutOfRangeException(nameof(errorClass), errorClass, "not a QMP error class"),
    };
}
