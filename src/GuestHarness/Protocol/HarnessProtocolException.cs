namespace MiniVmm.GuestHarness.Protocol;

/// <summary>A harness broke the protocol (a bad frame, length, version or order); the message says what.</summary>
public sealed class HarnessProtocolException(string message) : IOException(message);
