namespace MiniVmm.Vfio.Migration;

/// <summary>QAPI names of device states, as QEMU ≥ 9.1's <c>VFIO_MIGRATION</c> event spells them.</summary>
public static class VfioDeviceStateNames
{
    /// <summary>The QAPI name, e.g. <c>pre-copy-p2p</c>.</summary>
    public static string ToQapiName(this VfioDeviceState state) => state switch
    {
        VfioDeviceState.Stop => "stop",
        VfioDeviceState.Running => "running",
        VfioDeviceState.StopCopy => "stop-copy",
        VfioDeviceState.Resuming => "resuming",
        VfioDeviceState.RunningP2P => "running-p2p",
        VfioDeviceState.PreCopy => "pre-copy",
        VfioDeviceState.PreCopyP2P => "pre-copy-p2p",
        _ => "error",
    };
}
