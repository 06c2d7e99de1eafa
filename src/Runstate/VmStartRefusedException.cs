namespace MiniVmm.Runstate;

/// <summary>A VM start was refused by a <see cref="VmStartCheck"/>; the run state did not change.</summary>
public sealed class VmStartRefusedException(string reason) : InvalidOperationException(reason);
