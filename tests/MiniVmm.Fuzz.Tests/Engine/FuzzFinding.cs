namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>A target broke one of the fuzzer's rules (an untyped error, a wrong result, too much memory).</summary>
internal sealed class FuzzFinding(string message, Exception? inner = null) : Exception(message, inner);
