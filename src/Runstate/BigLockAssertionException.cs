namespace MiniVmm.Runstate;

/// <summary>Code ran with the big lock held where it must not be, or the other way round.</summary>
public sealed class BigLockAssertionException(string message) : InvalidOperationException(message);
