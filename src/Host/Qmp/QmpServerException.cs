namespace MiniVmm.Host.Qmp;

/// <summary>The QMP server could not listen where it was told to.</summary>
public sealed class QmpServerException(string message, Exception? inner = null) : Exception(message, inner);
