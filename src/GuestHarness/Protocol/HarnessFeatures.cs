namespace MiniVmm.GuestHarness.Protocol;

/// <summary>What a harness announces in HELLO and MiniVmm accepts in its reply.</summary>
[Flags]
public enum HarnessFeatures : ulong
{
    /// <summary>Nothing beyond the base protocol.</summary>
    None = 0,
    /// <summary>The harness has state to save: it migrates in the <c>x-guest-harness</c> section.</summary>
    State = 1,
    /// <summary>The harness obeys THROTTLE.</summary>
    Throttle = 2,
}
