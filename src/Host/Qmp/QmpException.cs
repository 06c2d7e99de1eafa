namespace MiniVmm.Host.Qmp;

/// <summary>
/// A command failure to report to the QMP client as <c>{"error": {"class": ..., "desc": ...}}</c>;
/// the message is the <c>desc</c>.
/// </summary>
public class QmpException(QmpErrorClass errorClass, string description, Exception? inner = null)
    : Exception(description, inner)
{
    /// <summary>Creates a <c>GenericError</c>.</summary>
    public QmpException(string description)
        : this(QmpErrorClass.GenericError, description)
    {
    }

    /// <summary>The class QMP reports.</summary>
    public QmpErrorClass ErrorClass { get; } = errorClass;
}
