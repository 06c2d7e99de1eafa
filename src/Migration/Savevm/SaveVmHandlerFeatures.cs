namespace MiniVmm.Migration.Savevm;

/// <summary>
/// The optional <see cref="ISaveVmHandlers"/> callbacks whose presence changes what the core
/// writes (in QEMU: whether the function pointer is set). Callbacks not listed here have
/// defaults that behave like QEMU's NULL pointer.
/// </summary>
[Flags]
public enum SaveVmHandlerFeatures
{
    /// <summary>No stream-shaping callback.</summary>
    None = 0,
    /// <summary><see cref="ISaveVmHandlers.SaveSetup"/>: the entry gets a START section (QEMU's <c>is_ram</c>).</summary>
    SaveSetup = 1,
    /// <summary><see cref="ISaveVmHandlers.SaveLiveIterate"/>: the entry gets PART sections.</summary>
    SaveLiveIterate = 2,
    /// <summary><see cref="ISaveVmHandlers.SaveLiveCompletePrecopy"/>: the entry gets an END section.</summary>
    SaveLiveCompletePrecopy = 4,
    /// <summary><see cref="ISaveVmHandlers.SaveState"/>: the entry gets a FULL section at completion.</summary>
    SaveState = 8,

    /// <summary>What a live, iterative handler such as RAM has.</summary>
    Live = SaveSetup | SaveLiveIterate | SaveLiveCompletePrecopy,
}
