namespace MiniVmm.Runstate;

/// <summary>
/// A VM change-state callback (QEMU's <c>VMChangeStateHandler</c>): told whether the VM is now
/// running and which run state it entered. Runs on the thread that starts or stops the VM,
/// with the big lock held. Throwing reports a failure; the other handlers still run.
/// </summary>
public delegate void VmStateChangeCallback(bool running, RunState state);
