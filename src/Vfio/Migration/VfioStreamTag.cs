namespace MiniVmm.Vfio.Migration;

/// <summary>
/// The be64 markers of QEMU's VFIO payload inside savevm sections (QEMU's <c>VFIO_MIG_FLAG_*</c>;
/// <c>docs/vfio.md</c>).
/// </summary>
public enum VfioStreamTag : ulong
{
    /// <summary>Ends a VFIO payload inside a section.</summary>
    EndOfState = 0xffffffffef100001,
    /// <summary>Followed by the device config, then <see cref="EndOfState"/>.</summary>
    ConfigState = 0xffffffffef100002,
    /// <summary>Followed immediately by <see cref="EndOfState"/> (the START payload).</summary>
    SetupState = 0xffffffffef100003,
    /// <summary>Followed by a be64 size and that many bytes read from the data fd.</summary>
    DataState = 0xffffffffef100004,
    /// <summary>Switchover-ack: the initial precopy data is all sent; replaces <see cref="EndOfState"/> once.</summary>
    InitDataSent = 0xffffffffef100005,
    /// <summary>Multifd only: the whole payload of the FULL section.</summary>
    ConfigLoadReady = 0xffffffffef100006,
}
