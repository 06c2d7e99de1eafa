namespace MiniVmm.GuestHarness;

/// <summary>The guest harness could not be set up (its socket, its RAM); the message is one line for the command line.</summary>
public sealed class GuestHarnessSetupException(string message, Exception? inner = null) : Exception(message, inner);
