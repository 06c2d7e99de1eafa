namespace MiniVmm.Host.Hosting;

/// <summary>The <c>-pidfile</c> file could not be written.</summary>
public sealed class PidFileException(string message, Exception inner) : Exception(message, inner);
