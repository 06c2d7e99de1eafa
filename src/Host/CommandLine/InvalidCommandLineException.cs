namespace MiniVmm.Host.CommandLine;

/// <summary>
/// A command-line option that cannot be honoured. The message names the option and its value,
/// as QEMU's do (<c>-m foo: ...</c>).
/// </summary>
public sealed class InvalidCommandLineException(string message) : Exception(message);
