namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Something that takes part in migration: it registers its live handlers or VMState
/// description with the registry when the registry is built from the service container
/// (see <see cref="SavevmServiceCollectionExtensions.AddSaveStateDevice{T}"/>).
/// </summary>
public interface ISaveStateDevice
{
    /// <summary>Registers this device's entries; runs once, when the registry is created.</summary>
    void Register(SaveStateRegistry registry);
}
