namespace MiniVmm.Host.Qmp;

/// <summary>
/// A QMP server socket as <c>-qmp unix:PATH,server=on,wait=off</c> describes it.
/// </summary>
/// <param name="Path">The UNIX socket's file.</param>
/// <param name="Wait">Whether startup waits for the first client before the VM starts (QEMU's <c>wait=on</c>).</param>
public sealed record QmpSocketOptions(string Path, bool Wait);
