namespace MiniVmm.Runstate;

/// <summary>
/// Asked before every VM start whether the VM can run now: null means yes, a text says why not
/// and the start is refused without any state change (as QEMU's <c>cont</c> fails when a
/// device cannot be activated). Runs on the starting thread with the big lock held; it may wait
/// for a bounded time for what it needs (a guest harness to connect).
/// </summary>
public delegate string? VmStartCheck();
